"""The one rule for images in 07: a config value wins, null means the lockfile pin.

Config fields name images in three shapes: a full `name:tag` (`default_images.*`), a name
and a tag apart (`conda_store.image` / `image_tag`), or a tag alone
(`argo_workflows.nebari_workflow_controller.image_tag`). Each part left null falls back to
the pin, so the quarterly bumps move every image nobody pinned by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagegraph.errors import RenderError
from stagegraph.stage import RenderContext
from stagegraph.tfjson import literal


@dataclass(frozen=True)
class Image:
    """An image name and tag, already escaped for Terraform."""

    name: str
    tag: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    def helm(self) -> dict[str, str]:
        """The `{name, tag}` shape the JupyterHub and Dask Gateway charts take."""
        return {"name": self.name, "tag": self.tag}


def split_ref(ref: str, field: str) -> tuple[str, str]:
    """`quay.io/org/img:1.2` -> (`quay.io/org/img`, `1.2`); a port is not a tag."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not name or not tag:
        raise RenderError(
            f"nebari-config.yaml: {field}: {ref!r} is not an image reference name:tag; "
            "write it as registry/name:tag (e.g. quay.io/nebari/nebari-jupyterlab:<tag>) or set it to null"
        )
    return name, tag


def resolve_image(
    ctx: RenderContext,
    pin: str,
    *,
    field: str,
    ref: str | None = None,
    name: str | None = None,
    tag: str | None = None,
) -> Image:
    """The image for `images.<pin>`, overridden part by part by the config.

    `ref` is a whole `name:tag` override; `name` and `tag` override one part each. `field`
    names the config field in error messages.
    """
    pinned = ctx.pins.image(pin)
    if ref is not None:
        name, tag = split_ref(ref, field)
    return Image(
        name=literal(name) if name is not None else pinned.image,
        tag=literal(tag) if tag is not None else pinned.tag,
    )
