"""Machine types of each cloud, checked offline against the catalog and the naming scheme.

AWS instance types are checked against the full list in `lockfiles/cloud-catalog.json`
(from botocore's EC2 model). GCP and Azure publish no such list offline, and theirs differ
per zone: the catalog holds their families (GCP `e2`, `n2d`, ...; Azure series `D`, `NC`,
...), and the rest of the name is checked by shape. Together these catch what users get
wrong (an AWS name on GCP, a typo in the size, a GPU group on a CPU family).
"""

from __future__ import annotations

import functools
import re

from stagegraph.schema.cloud_catalog import catalog, suggest

_SHAPES = {
    # m5.2xlarge, g4dn.xlarge, c7gn.metal, u-6tb1.56xlarge
    "aws": r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$",
    # e2-standard-8, n2d-highmem-4, a2-highgpu-1g, custom-4-16384
    "gcp": r"^(custom-\d+-\d+(-ext)?|[a-z]\d[a-z]?-[a-z]+(-\d+[a-z]*)?(-[a-z0-9]+)?)$",
    # Standard_D8_v3, Standard_NC6s_v3, Standard_E4ads_v5
    "azure": r"^(Standard|Basic)_[A-Za-z0-9]+(_[A-Za-z0-9]+)*$",
}
_EXAMPLES = {"aws": "m5.xlarge", "gcp": "e2-standard-4", "azure": "Standard_D4_v3"}
_LABELS = {"aws": "an AWS", "gcp": "a GCP", "azure": "an Azure"}
#: Families whose machines carry NVIDIA GPUs (EKS GPU AMI; GKE guest accelerators).
_GPU_FAMILY = {"aws": r"^(g\d|gr\d|p\d)", "gcp": r"^(n1|a2|a3|a4|g2|g4)-"}
_GPU_NAMES = {"aws": "g4dn, g5, g6, p3, p4d, p5, ...", "gcp": "n1 with an accelerator, a2, a3, a4, g2, g4"}


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _family(provider: str, instance: str) -> tuple[str, str] | None:
    """(the catalog list, the family) a GCP or Azure name belongs to; None for custom GCP types."""
    if provider == "gcp":
        family = instance.split("-", 1)[0]
        return None if family == "custom" else ("machine_families", family)
    series = _compiled(r"^[A-Za-z]+_([A-Za-z]+)").match(instance)
    return "vm_series", series.group(1).upper() if series else ""


def _catalog_problem(provider: str, instance: str) -> str | None:
    lists = catalog()[provider]
    if provider == "aws":
        listing = lists["instance_types"]
        if instance not in listing.values:
            return f"not an AWS instance type this release knows; {suggest(instance, listing.values)}"
        return None
    found = _family(provider, instance)
    if found is None:
        return None
    kind, family = found
    listing = lists[kind]
    if family not in listing.values:
        what = "machine family" if provider == "gcp" else "VM series"
        return (
            f"{family!r} is not {_LABELS[provider]} {what} this release knows; "
            f"{suggest(family, listing.values)}"
        )
    return None


def instance_problem(provider: str, instance: str, *, gpu: bool) -> str | None:
    """Why `instance` cannot be a machine type of `provider`, or None."""
    if not _compiled(_SHAPES[provider]).match(instance):
        return f"not {_LABELS[provider]} machine type (they look like {_EXAMPLES[provider]})"
    problem = _catalog_problem(provider, instance)
    if problem:
        return problem
    family = _GPU_FAMILY.get(provider)
    if gpu and family and not _compiled(family).match(instance):
        kind = "gpu: true" if provider == "aws" else "guest_accelerators"
        return f"{kind} needs a GPU machine family ({_GPU_NAMES[provider]})"
    return None
