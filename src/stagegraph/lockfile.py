"""The one central lockfile: every version the rendered stages use.

`lockfiles/versions.yaml` is edited by humans and by `doit bump`, so it is plain YAML with
comments (rewrites go through ruamel.yaml to keep them). Reading only needs PyYAML's C
loader, which keeps `doit list` fast. A pin is addressed by a dotted key such as
`helm_charts.traefik`; stages declare the keys they use and may read nothing else.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stagegraph.errors import LockfileError

DEFAULT_LOCKFILE = Path("lockfiles") / "versions.yaml"


class Pin(BaseModel):
    """Common part of every pin: an optional bump policy (see `doit bump`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["patch", "minor", "major", "hold"] = Field(
        "minor", description="Which upgrades `doit bump` may propose."
    )
    hold_reason: str | None = Field(None, description="Why a pin is held (policy: hold).")


class VersionPin(Pin):
    version: str = Field(description="Exact version.")


class ProviderPin(Pin):
    source: str = Field(description="Registry address, e.g. hashicorp/kubernetes.")
    version: str = Field(description="Exact provider version.")


class ChartPin(Pin):
    repository: str = Field(description="Helm repository URL (https:// or oci://).")
    chart: str = Field(description="Chart name in that repository.")
    version: str = Field(description="Exact chart version.")


class ImagePin(Pin):
    image: str = Field(description="Image name with registry, e.g. quay.io/nebari/x.")
    tag: str = Field(description="Exact tag.")

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"


class KubernetesPins(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_version: VersionPin = Field(description="Newest Kubernetes minor this release supports.")
    kind_node_image: ImagePin = Field(description="kindest/node image of the local cluster.")


class Lockfile(BaseModel):
    """The whole lockfile, grouped the way `doit bump` rotates through it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terraform: VersionPin = Field(description="Terraform (or OpenTofu) version required.")
    kubernetes: KubernetesPins
    providers: dict[str, ProviderPin] = Field(default_factory=dict)
    helm_charts: dict[str, ChartPin] = Field(default_factory=dict)
    images: dict[str, ImagePin] = Field(default_factory=dict)
    python: dict[str, VersionPin] = Field(default_factory=dict)

    def pin(self, key: str, *, file: str = str(DEFAULT_LOCKFILE), user: str = "") -> Pin:
        """Look up a dotted key; a missing pin names the file, the key and who wanted it."""
        node: Any = self
        for part in key.split("."):
            if isinstance(node, BaseModel) and part in type(node).model_fields:
                node = getattr(node, part)
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                who = f" (used by {user})" if user else ""
                raise LockfileError(
                    f"{file}: {key}: no such pin{who}; add it to the lockfile (see README, 'The lockfile')"
                )
        if not isinstance(node, Pin):
            raise LockfileError(f"{file}: {key}: is a group, not a pin; name one entry in it")
        return node

    def keys(self) -> list[str]:
        """Every pin key, for checks such as 'every pin is used by some stage'."""
        out = ["terraform", "kubernetes.max_version", "kubernetes.kind_node_image"]
        for group in ("providers", "helm_charts", "images", "python"):
            out += [f"{group}.{name}" for name in getattr(self, group)]
        return out


def pin_digest(pin: Pin) -> str:
    raw = json.dumps(pin.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def load_lockfile(path: Path) -> Lockfile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockfileError(
            f"{path}: lockfile not found; restore it from git (git checkout -- {path})"
        ) from None
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read lockfile: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise LockfileError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8 "
            f"or restore it from git (git checkout -- {path})"
        ) from None
    from stagegraph.configfile import load_yaml_bounded

    try:
        data = load_yaml_bounded(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise LockfileError(
            f"{path}: not valid YAML{where}{': ' + problem if problem else ''}; fix it"
        ) from None
    if not isinstance(data, dict):
        raise LockfileError(f"{path}: the top level must be a mapping of pin groups")
    try:
        return Lockfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise LockfileError(
            f"{path}: {loc}: {err['msg']} (got {err.get('input')!r}); {len(exc.errors())} problem(s) in all"
        ) from None
