"""Check `terraform-schema`: every Terraform stage, planned by real Terraform against the
pinned providers' schemas stored in `provider-schemas/` beside the lockfile (this release's: `src/stagegraph/lockfiles/provider-schemas/`).

The work is `stagegraph.checks.providers.check_stages`; this module turns the render that
`doit check` made into its input (upstream variables from the declared mock outputs, secret
variables as stand-ins) and its results into findings, one per Terraform diagnostic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from stagegraph.checks import CheckRun, Finding, register
from stagegraph.errors import StagegraphError

NAME = "terraform-schema"


@register(NAME, "Terraform stages planned by real Terraform against the pinned providers' schemas")
def check_terraform_schema(run: CheckRun) -> Iterator[Finding]:
    from stagegraph.checks.providers import check_stages
    from stagegraph.checks.rendered import under_check
    from stagegraph.terraform import find_terraform
    from stagegraph.tfschema.store import schema_dir

    terraform_stages = [
        s for s in run.stages if s.stage.kind == "terraform" and any(n.endswith(".tf.json") for n in s.files)
    ]
    if not terraform_stages:
        return
    first = terraform_stages[0].name
    if run.provider == "sandbox":
        yield Finding.skipped(
            first, NAME, "provider sandbox renders only Terraform's built-in terraform_data"
        )
        return
    if run.lockfile_path is None:
        yield Finding.skipped(
            first, NAME, "the lockfile's folder is unknown, so are the stored provider schemas"
        )
        return
    try:
        binary = find_terraform(run.config.stagegraph.terraform.binary if run.config else "auto")
    except StagegraphError as exc:
        yield Finding.skipped(first, NAME, str(exc))
        return
    by_name = {s.name: s.stage for s in run.stages}
    stages = []
    for render in terraform_stages:
        try:
            stages.append(under_check(render.name, render.files, render.stage, by_name, run.config))
        except StagegraphError as exc:
            yield Finding.problem(render.name, NAME, str(exc))
    pinned = [(pin.source, pin.version) for pin in run.lock.providers.values()]
    lockfile = f"{run.lockfile_path.parent.name}/{run.lockfile_path.name}"
    # Each stage is one Terraform process; a few at a time, never more than the cores.
    workers = max(1, min(4, os.cpu_count() or 1))
    for result in check_stages(
        stages, schema_dir(run.lockfile_path), binary.argv, pinned_by=lockfile, pinned=pinned, workers=workers
    ):
        for problem in result.problems:
            yield Finding.problem(result.label, NAME, problem)
        for reason in result.skipped:
            yield Finding.skipped(result.label, NAME, reason)
