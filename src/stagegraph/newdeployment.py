"""`stagegraph new DIR`: a deployment folder of its own that works with `doit` at once, offline.

It writes a minimal dodo.py, the commented config `doit init` writes (the Keycloak root
password encrypted with SOPS, an age key created if this machine has none), a .gitignore
that keeps machine-local state out of git while the render stays reviewable, and a short
README. Pins come from the installed stagegraph; the folder may add
`lockfiles/overrides.yaml` with only the pins it changes. Nothing is overwritten: an
existing file stops the command before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stagegraph.deployment import DEFAULT_CONFIG_NAME
from stagegraph.errors import StagegraphError

DODO = '''"""doit's entry point for this deployment: `doit list`, `doit deploy`, `doit env=dev deploy`."""

from stagegraph.signals import install_early

install_early()  # first: a Ctrl-C while the imports below load is one line, not a traceback

from pathlib import Path  # noqa: E402

from stagegraph.tasks import dodo_namespace  # noqa: E402

globals().update(dodo_namespace(Path(__file__).resolve().parent))
'''

GITIGNORE = """\
# Machine-local deploy state: records, lock, logs, run summaries, doit's database
# (stagegraph's own; environments keep theirs in <env>/.stagegraph/).
.stagegraph/
# Terraform working data, state and saved plans, next to each rendered stage. State can
# hold secrets: keep it out of git (or use a remote terraform_state backend).
.terraform/
terraform.tfstate*
*.tfplan
# Written at deploy time from the upstream stages' outputs, and the manifest stages'
# inventory of what they applied: machine-local, like the state they come from.
stagegraph.tfvars.json
.stagegraph-applied.json
# Decrypted secrets never belong here; only *.enc.* files under secrets/.
secrets/*
!secrets/*.enc.*
!secrets/.sops.yaml
"""

README = """\
# {project} — a stagegraph deployment

`{config}` describes the platform (Nebari's format); `doit` deploys it as a graph of
Terraform stages rendered into `stages/`. Only stages whose inputs changed are applied again.

```sh
doit validate          # check the config and the pins, offline
doit deploy            # render stages/ and apply what changed
doit status            # per stage: applied, stale, failed, ... (--all: every environment)
```

- `stages/` is the render: commit it, so that `git diff stages/` shows what a config change
  will do. Terraform state, records and logs stay on this machine (see `.gitignore`).
- `secrets/` holds SOPS-encrypted files only; `secrets/.sops.yaml` says which age keys may
  read them. The key of this machine is in `{key}` — back it up.
- Environments: `nebari-config.<env>.yaml` beside this config deploys into `<env>/`
  (`doit env=dev deploy`), with its own state and records.
- Pins come from the installed stagegraph ({version}). To change one, put only that key in
  `lockfiles/overrides.yaml` (`doit graph` marks it overridden).
"""


class NewDeploymentError(StagegraphError):
    """The folder cannot become a new deployment (files in the way, not writable)."""


def stagegraph_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stagegraph")
    except PackageNotFoundError:
        return "source tree"


def create_deployment(
    target: Path,
    *,
    provider: str = "sandbox",
    project_name: str = "demo",
    domain: str = "demo.example.com",
    auth: str = "password",
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the deployment folder `target`; return the lines worth showing the user."""
    shown = target  # as the user typed it, for the messages
    # Absolute from here on: SOPS runs with the new folder as its working directory, where a
    # relative `target` would name a folder inside itself.
    target = target.absolute()
    from stagegraph.actions import section_owners
    from stagegraph.graph import build_graph
    from stagegraph.initconfig import render_init_config, write_new_config
    from stagegraph.sops.init import ROOT_PASSWORD_FILE, ROOT_PASSWORD_KEY, init_root_password_secret
    from stagegraph.sops.keys import key_file
    from stagegraph.stages.builtin import BUILTIN_STAGES

    names = ["dodo.py", ".gitignore", "README.md", DEFAULT_CONFIG_NAME]
    in_the_way = [name for name in names if (target / name).exists()]
    if in_the_way:
        raise NewDeploymentError(
            f"{target}: {', '.join(in_the_way)} already there; pick an empty folder (nothing was written)"
        )
    # The config first: a bad choice (provider, auth) stops here, before any key or secret exists.
    config = render_init_config(
        provider=provider,
        project_name=project_name,
        domain=domain,
        auth_type=auth,
        section_owner=section_owners(build_graph(BUILTIN_STAGES)),
        root_password_ref={"sops": ROOT_PASSWORD_FILE, "key": ROOT_PASSWORD_KEY},
    )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NewDeploymentError(f"{target}: cannot create the folder ({exc.strerror})") from None
    notes: list[str] = []
    init_root_password_secret(target, environ=environ, notes=notes)
    version = stagegraph_version()
    readme = README.format(
        project=project_name, config=DEFAULT_CONFIG_NAME, key=key_file(environ), version=version
    )
    for name, text in {"dodo.py": DODO, ".gitignore": GITIGNORE, "README.md": readme}.items():
        write_new_config(target / name, text)
        (target / name).chmod(0o644)  # not secret; write_new_config starts every file at 0600
    write_new_config(target / DEFAULT_CONFIG_NAME, config)
    return [
        *notes,
        f"created the deployment {shown} (provider {provider}, pins of stagegraph {version})",
        f"next: cd {shown} && doit deploy",
    ]
