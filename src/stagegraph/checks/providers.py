"""Check rendered Terraform stages against the real providers' schemas, with real Terraform.

For each stage, Terraform itself runs `plan` (which validates first) in a scratch copy of the
stage's `*.tf.json`, with the stage's upstream variables taken from the declared mock
outputs, against every provider the stage requires served from its stored schema
(`provider-schemas/` beside the lockfile (this release's: `src/stagegraph/lockfiles/provider-schemas/`), see `stagegraph.tfschema`). So the problems reported are
Terraform's own words: "No argument or block type is named ...  Did you mean ...", "The
argument ... is required", "Incorrect attribute value type", a read-only attribute set, a
block where an attribute belongs. No registry, no `init`, no cluster.

The providers are served by one helper process for the whole check (one gRPC server per
provider, on a unix socket in a private temporary directory) and handed to Terraform with
`TF_REATTACH_PROVIDERS`, Terraform's mechanism for providers that are already running.
That spares a Python start per provider per Terraform run, which `dev_overrides` would
cost (each Terraform command starts every provider two or three times); both mechanisms
skip `init`. The helper is a process of its own, not threads of this one, because a
process holding gRPC's threads cannot safely fork the Terraform children.

What it does not check: the providers' own validators (allowed values, conflicting
arguments) and anything only the remote API knows. A provider pin with no stored schema is
a problem of its own (`MissingSchemaError`), never a silent pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagegraph.errors import TerraformError
from stagegraph.tfschema.store import MissingSchemaError, full_source, require_schema

#: Where the check's upstream values come from, named in the variables file it writes.
VARS_FILE = "stagegraph-check.tfvars.json"
#: The value every sensitive variable gets in a check: a placeholder, never a real secret.
SECRET_PLACEHOLDER = "stagegraph-check-placeholder"  # noqa: S105 - a stand-in, not a secret
PLAN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class StageUnderCheck:
    """One rendered stage: its files (as written) and the values of its variables.

    `sensitive` holds stand-ins for the stage's secret variables, shaped like the real
    values (see `stagegraph.checks.rendered.secret_placeholder`), never a real secret.
    """

    label: str  # how results name it, e.g. "nebari-local.happy.yaml 04-kubernetes-ingress"
    files: Mapping[str, bytes]
    variables: Mapping[str, Any]
    sensitive: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StageResult:
    label: str
    problems: tuple[str, ...]
    seconds: float
    providers: tuple[str, ...] = field(default=())
    #: Why the stage was not planned although nothing is wrong with the pins (a provider
    #: neither pinned in the lockfile nor stored, e.g. one a plugin brings).
    skipped: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Prepared:
    stage: StageUnderCheck
    docs: dict[str, dict[str, Any]]
    providers: dict[str, tuple[str, str]]
    problems: list[str]
    skipped: list[str]


def terraform_documents(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    return {n: json.loads(d) for n, d in sorted(files.items()) if n.endswith(".tf.json") and "/" not in n}


def required_providers(docs: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """{local name: (source, exact version)} the stage requires, and problems with them."""
    found: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    used: dict[str, str] = {}
    for name, doc in docs.items():
        terraform = doc.get("terraform", {})
        for block in terraform if isinstance(terraform, list) else [terraform]:
            for local, req in (block.get("required_providers") or {}).items():
                req = req if isinstance(req, dict) else {"version": req}
                source = req.get("source", f"hashicorp/{local}")
                version = str(req.get("version", "")).strip().removeprefix("=").strip()
                if not version or any(c in version for c in "<>~, "):
                    problems.append(
                        f"{name}: required_providers.{local}: version {req.get('version')!r} is not one "
                        "exact version; the check needs the pinned version to pick the schema"
                    )
                    continue
                found[local] = (source, version)
        for kind in ("resource", "data"):
            for type_name in doc.get(kind, {}) or {}:
                used.setdefault(type_name.split("_", 1)[0], f"{name}: {kind} {type_name}")
        for local in doc.get("provider", {}) or {}:
            used.setdefault(local, f"{name}: provider {local}")
    for local, where in sorted(used.items()):
        if local not in found and local != "terraform":
            problems.append(
                f"{where}: provider {local!r} has no required_providers entry with its pinned version"
            )
    return found, problems


def scratch_copy(docs: Mapping[str, Mapping[str, Any]], stage: StageUnderCheck, directory: Path) -> None:
    """The stage's Terraform files, minus any backend (the check never touches state)."""
    for name, doc in docs.items():
        terraform = doc.get("terraform")
        if isinstance(terraform, dict) and "backend" in terraform:
            trimmed = {**doc, "terraform": {k: v for k, v in terraform.items() if k != "backend"}}
            (directory / name).write_text(json.dumps(trimmed, indent=2, sort_keys=True), encoding="utf-8")
        else:
            # The bytes as rendered, so Terraform's line numbers point into the user's file.
            (directory / name).write_bytes(stage.files[name])
    values = dict(stage.variables)
    values.update(stage.sensitive)
    values.update(deploy_time_placeholders(docs, values))
    (directory / VARS_FILE).write_text(json.dumps(values), encoding="utf-8")


#: Stand-ins by declared type for variables only a deploy fills (not upstream outputs).
_BY_TYPE: dict[str, Any] = {"string": "stagegraph-check-placeholder", "number": 0, "bool": False}


def deploy_time_placeholders(
    docs: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]
) -> dict[str, Any]:
    """Values for declared variables with no default that neither upstream nor secrets give.

    Some inputs are found only at deploy time on the deploying machine (the existing
    provider's kubeconfig path and context); the check gives them a stand-in of their
    declared type. A variable of another type stays unset, and Terraform says so.
    """
    out: dict[str, Any] = {}
    for doc in docs.values():
        for name, spec in (doc.get("variable") or {}).items():
            if name in values or "default" in (spec or {}):
                continue
            kind = str((spec or {}).get("type", "string")).strip()
            if kind in _BY_TYPE:
                out[name] = _BY_TYPE[kind]
    return out


def diagnostics(stdout: str, stderr: str, exit_code: int) -> list[str]:
    """Terraform's error diagnostics, one line each: `file:line: summary: detail`."""
    out: list[str] = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("type") != "diagnostic":
            continue
        diag = event.get("diagnostic") or {}
        if diag.get("severity") != "error":
            continue
        rng = diag.get("range") or {}
        where = f"{rng['filename']}:{rng.get('start', {}).get('line', '?')}: " if rng.get("filename") else ""
        detail = " ".join(str(diag.get("detail", "")).split())
        out.append(f"{where}{diag.get('summary', 'error')}" + (f": {detail}" if detail else ""))
    if exit_code not in (0, 2) and not out:
        tail = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
        out.append(f"terraform exited {exit_code}: {' '.join(tail[-3:]) or 'no output'}")
    return out


def _plan(argv: Sequence[str], workdir: Path, env: Mapping[str, str]) -> list[str]:
    from stagegraph.tfprocess import _untrack, start

    # `start` registers the child so a Ctrl-C or SIGTERM of this run stops it too; it is
    # unregistered once it has exited (what `supervise` does for the other commands).
    proc = start(
        [*argv, "plan", "-json", "-input=false", "-lock=false", "-refresh=false", f"-var-file={VARS_FILE}"],
        cwd=workdir,
        extra_env=env,
    )
    try:
        try:
            stdout, stderr = proc.communicate(timeout=PLAN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return [f"terraform plan did not finish in {PLAN_TIMEOUT_S:.0f}s"]
    finally:
        _untrack(proc)
    return diagnostics(stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), proc.returncode)


def _used_types(documents: Iterable[dict[str, dict[str, Any]]]) -> dict[str, set[str]]:
    """The resource and data source types the checked stages use, over all their files."""
    used: dict[str, set[str]] = {"resource": set(), "data": set()}
    for docs in documents:
        for doc in docs.values():
            for kind in ("resource", "data"):
                used[kind].update(doc.get(kind, {}))
    return used


def _pruned_files(needed: Mapping[str, Path], used: dict[str, set[str]], root: Path) -> dict[str, Path]:
    """Each needed provider's schema cut down to the used types, as files the server reads."""
    import gzip

    out: dict[str, Path] = {}
    for i, (source, path) in enumerate(sorted(needed.items())):
        # Read here rather than through the echo module: this process must not load gRPC.
        raw = path.read_bytes()
        stored = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
        target = root / f"schema{i}.json.gz"
        doc = {"provider_schemas": {source: _prune(dict(stored["provider_schemas"][source]), used)}}
        target.write_bytes(gzip.compress(json.dumps(doc).encode()))
        out[source] = target
    return out


def _prune(schema: dict[str, Any], used: dict[str, set[str]]) -> dict[str, Any]:
    """Serve only the types the stages use.

    Terraform validates every type a provider serves before it plans anything, and a few of
    the thousands of types extracted for aws and cloudflare (types no stage uses) fail that
    validation; serving only the used ones checks exactly the same things, faster.
    """
    out = dict(schema)
    for key, kind in (("resource_schemas", "resource"), ("data_source_schemas", "data")):
        if key in out:
            out[key] = {name: s for name, s in out[key].items() if name in used[kind]}
    return out


def check_stages(
    stages: Iterable[StageUnderCheck],
    schema_dir: Path,
    terraform_argv: Sequence[str],
    *,
    pinned_by: str = "lockfiles/versions.yaml",
    pinned: Collection[tuple[str, str]] | None = None,
    workers: int = 2,
    on_result: Callable[[StageResult], None] | None = None,
) -> list[StageResult]:
    """Plan every stage with real Terraform against the stored provider schemas.

    `terraform_argv` starts Terraform (`TerraformBinary.argv`: a binary, or the embedded
    one). A provider with no stored schema fails the stages that need it, by name; when
    `pinned` lists the lockfile's (source, version) pairs, a provider outside it with no
    stored schema only skips the stage, with the reason.
    """
    pinned_full = None if pinned is None else {(full_source(src), ver) for src, ver in pinned}
    prepared: list[_Prepared] = []
    needed: dict[str, Path] = {}
    for stage in stages:
        docs = terraform_documents(stage.files)
        providers, problems = required_providers(docs)
        skipped: list[str] = []
        for source, version in providers.values():
            try:
                needed[full_source(source)] = require_schema(schema_dir, source, version, pinned_by)
            except MissingSchemaError as exc:
                if pinned_full is None or (full_source(source), version) in pinned_full:
                    problems.append(str(exc))
                else:
                    skipped.append(
                        f"provider {source} {version} is not pinned in {pinned_by} and has no stored schema"
                    )
        prepared.append(_Prepared(stage, docs, providers, problems, skipped))

    results: list[StageResult] = []
    with tempfile.TemporaryDirectory(prefix="sg-provider-check-") as tmp:
        root = Path(tmp)
        used = _used_types(item.docs for item in prepared)
        server, reattach = _serve(_pruned_files(needed, used, root), root / "providers.log")
        try:
            env = {
                "TF_REATTACH_PROVIDERS": reattach,
                "TF_DATA_DIR": ".terraform-check",
                "TF_CLI_CONFIG_FILE": str(root / "none.tfrc"),
            }
            (root / "none.tfrc").write_text("", encoding="utf-8")

            def one(index: int) -> StageResult:
                item = prepared[index]
                t0 = time.monotonic()
                problems = item.problems
                if not problems and not item.skipped:
                    workdir = root / f"stage{index}"
                    workdir.mkdir()
                    scratch_copy(item.docs, item.stage, workdir)
                    problems = _plan(terraform_argv, workdir, env)
                result = StageResult(
                    item.stage.label,
                    tuple(problems),
                    time.monotonic() - t0,
                    tuple(sorted(f"{s} {v}" for s, v in item.providers.values())),
                    tuple(item.skipped),
                )
                if on_result is not None:
                    on_result(result)
                return result

            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                results = list(pool.map(one, range(len(prepared))))
        finally:
            _stop(server)
    return results


def _serve(schemas: Mapping[str, Path], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the stand-in providers (`stagegraph.tfschema.echo`) in a process of their own."""
    argv = [sys.executable, "-P", "-m", "stagegraph.tfschema.echo", *(f"{s}={p}" for s, p in schemas.items())]
    with log.open("wb") as err:  # a file, not a pipe: gRPC's own logging never blocks it
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the process exits (EOF) if it cannot start
    if not line.strip():
        _stop(proc)
        last = (log.read_text(encoding="utf-8", errors="replace").strip().splitlines() or ["no output"])[-1]
        raise TerraformError(f"the stand-in providers of the schema check did not start: {last}")
    return proc, line.decode().strip()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
