"""Deploy actions left by `doit upgrade`: run before or after their stage, and recorded.

Where Nebari's upgrade talks to the live cluster while it rewrites the config (deleting
Argo CRDs, patching Helm releases, renaming state attributes), stagegraph records an action
in `.stagegraph/upgrade-actions.json` and the deploy runs it at its place in the graph:
a `before` action right before its stage applies, an `after` action right after it
succeeded. A stage with a pending action is never skipped as up to date. Each action's
outcome (done, not applicable, and when) stays in the file, so what an upgrade did to the
cluster is visible afterwards (`doit upgrade --list`), never a hidden side effect.

Manual actions (a Helm command, a Keycloak console step) stop the deploy before their
stage, with the commands, until `doit upgrade --confirm ID` says they were run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stagegraph.errors import DeployError, StagegraphError
from stagegraph.upgrade.model import DeployAction

FILE = "upgrade-actions.json"
_LIST = TypeAdapter(list[DeployAction])


def path_of(state_dir: Path) -> Path:
    return state_dir / FILE


def load(state_dir: Path) -> list[DeployAction]:
    path = path_of(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StagegraphError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return _LIST.validate_json(raw)
    except ValidationError as exc:
        raise StagegraphError(
            f"{path}: not a list of upgrade actions ({exc.errors()[0]['msg']}); restore it from "
            "git or delete it to drop the pending actions"
        ) from None


def save(state_dir: Path, actions: Iterable[DeployAction]) -> None:
    from stagegraph.atomic import write_atomic

    data = json.dumps([a.model_dump(mode="json") for a in actions], indent=2) + "\n"
    write_atomic(path_of(state_dir), data, 0o600)


def add(state_dir: Path, new: Iterable[DeployAction]) -> list[DeployAction]:
    """Add actions (an action with the same id is replaced only while still pending)."""
    actions = {a.id: a for a in load(state_dir)}
    for action in new:
        old = actions.get(action.id)
        if old is None or old.status == "pending":
            actions[action.id] = action
    merged = list(actions.values())
    save(state_dir, merged)
    return merged


def pending(state_dir: Path, stage: str, when: str | None = None) -> list[DeployAction]:
    return [
        a
        for a in load(state_dir)
        if a.stage == stage and a.status == "pending" and (when is None or a.when == when)
    ]


def _finish(state_dir: Path, action_id: str, status: str, note: str) -> DeployAction:
    actions = load(state_dir)
    for i, action in enumerate(actions):
        if action.id == action_id:
            done = action.model_copy(
                update={"status": status, "note": note, "finished_at": datetime.now(UTC).isoformat()}
            )
            actions[i] = done
            save(state_dir, actions)
            return done
    known = ", ".join(a.id for a in actions) or "none"
    raise StagegraphError(f"no upgrade action {action_id!r}; known: {known}")


def confirm(state_dir: Path, action_id: str) -> DeployAction:
    """Record that a manual action was carried out by a person."""
    action = next((a for a in load(state_dir) if a.id == action_id), None)
    if action is not None and action.status != "pending":
        raise StagegraphError(f"upgrade action {action_id} is already {action.status}")
    return _finish(state_dir, action_id, "done", "confirmed with `doit upgrade --confirm`")


KubeDelete = Callable[[dict[str, str]], list[str]]


def run(
    state_dir: Path,
    stage: str,
    when: str,
    *,
    sandbox: bool,
    delete: KubeDelete | None,
    state_file: Path | None,
    line: Callable[[str], None],
) -> None:
    """Run the pending `when` actions of `stage`, recording each outcome.

    `delete` deletes what one object spec names and returns what it deleted (built by the
    engine from the stage's kubeconfig); `state_file` is the stage's local state.
    """
    for action in pending(state_dir, stage, when):
        if sandbox:
            _finish(state_dir, action.id, "not-applicable", "sandbox: no cluster to act on")
            line(f"upgrade action {action.id}: not applicable in the sandbox (recorded)")
            continue
        if action.kind == "manual":
            commands = "; ".join(action.commands)
            raise DeployError(
                f"stage {stage}: upgrade action {action.id} ({action.description}) must be done by "
                f"hand {when} this stage applies: {commands}; then run `doit upgrade --confirm {action.id}`"
            )
        if action.kind == "kubernetes-delete":
            if delete is None:
                raise DeployError(
                    f"stage {stage}: upgrade action {action.id} needs the cluster, but "
                    "02-infrastructure has no recorded kubeconfig; deploy it first"
                )
            gone = [name for spec in action.objects for name in delete(spec)]
            note = f"deleted {', '.join(gone)}" if gone else "nothing left to delete"
        else:
            note = _rename_state(state_file, action.renames)
        _finish(state_dir, action.id, "done", note)
        line(f"upgrade action {action.id}: {note}")


def _rename_state(state_file: Path | None, renames: dict[str, str]) -> str:
    if state_file is None or not state_file.is_file():
        return "no local state to migrate"
    from stagegraph.atomic import write_atomic

    state = json.loads(state_file.read_text(encoding="utf-8"))
    count = 0

    def walk(node: Any) -> Any:
        nonlocal count
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in renames:
                    count += 1
                out[renames.get(key, key)] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    write_atomic(state_file, json.dumps(walk(state), indent=2) + "\n", 0o600)
    return f"renamed {count} attribute(s) in {state_file.name}"


def kube_deleter(kubeconfig_path: str, context: str | None) -> KubeDelete:
    """Delete objects named by an action's spec (name, or label_selector) with the kube client."""
    from stagegraph.kube.apply import group_path
    from stagegraph.kube.client import KubeApiError, KubeTarget, connect

    def delete(spec: dict[str, str]) -> list[str]:
        base = group_path(spec["api_version"])
        ns = spec.get("namespace")
        collection = f"{base}/namespaces/{ns}/{spec['plural']}" if ns else f"{base}/{spec['plural']}"
        with connect(KubeTarget(kubeconfig_path, context)) as client:
            if "name" in spec:
                names = [spec["name"]]
            else:
                listing = client.request("GET", collection, query=[("labelSelector", spec["label_selector"])])
                names = [str(i["metadata"]["name"]) for i in listing.get("items", [])]
            gone = []
            for name in names:
                try:
                    client.request("DELETE", f"{collection}/{name}")
                except KubeApiError as exc:
                    if exc.status != 404:
                        raise
                    continue
                gone.append(f"{spec['plural']}/{name}")
            return gone

    return delete
