"""The regions and machine types each cloud offers, as data with provenance, checked offline.

Nebari asks the cloud's API at validate (so `nebari validate` fails offline). Here the
lists are package data beside the packaged lockfile (`lockfiles/cloud-catalog.json`), each
saying where it came from and when; `doit cloud_catalog` refreshes the machine-readable
ones (README, "Cloud regions and machine types"). The file is read once, on the first
check of a cloud config, so `doit list` never pays for it.

What each list is:
- AWS regions and instance types: exact, from the EC2 model and endpoint data botocore ships.
- GCP regions: exact; machine types: the families (`e2`, `n2d`, `a3`, ...), since a full
  list differs per zone and GCP publishes none offline; the size is checked by shape.
- Azure regions: exact (short names; "Central US" is compared as `centralus`); VM sizes:
  the series (`D`, `NC`, `HB`, ...), for the same reason.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path

#: The data file, beside the packaged lockfile.
CATALOG_NAME = "cloud-catalog.json"
#: The list kinds the file holds per cloud.
KINDS = {
    "aws": ("regions", "instance_types"),
    "gcp": ("regions", "machine_families"),
    "azure": ("regions", "vm_series"),
}


@dataclass(frozen=True)
class Listing:
    """One list of names, where it came from and when."""

    source: str
    retrieved: str
    values: frozenset[str]


def catalog_path() -> Path:
    # Package data beside this package's modules (importlib.resources costs ~40 ms to import).
    return Path(__file__).resolve().parents[1] / "lockfiles" / CATALOG_NAME


def parse_catalog(text: str) -> dict[str, dict[str, Listing]]:
    """The catalog's lists by cloud and kind (a malformed file is a packaging bug: it raises)."""
    raw = json.loads(text)
    out: dict[str, dict[str, Listing]] = {}
    for cloud, kinds in KINDS.items():
        out[cloud] = {}
        for kind in kinds:
            entry = raw[cloud][kind]
            out[cloud][kind] = Listing(
                str(entry["source"]), str(entry["retrieved"]), frozenset(entry["values"])
            )
    return out


@functools.cache
def catalog() -> dict[str, dict[str, Listing]]:
    return parse_catalog(catalog_path().read_text(encoding="utf-8"))


def azure_short(region: str) -> str:
    return region.replace(" ", "").lower()


def _probe(provider: str, region: str) -> str:
    return azure_short(region) if provider == "azure" else region


def known_region(provider: str, region: str) -> bool:
    if provider not in KINDS:
        return True
    return _probe(provider, region) in catalog()[provider]["regions"].values


def suggest(value: str, pool: frozenset[str]) -> str:
    """'did you mean' the closest names, or a few known ones."""
    close = difflib.get_close_matches(value, sorted(pool), n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    if len(pool) <= 40:  # families and series: short enough to name them all
        return f"known: {', '.join(sorted(pool))}"
    return f"known: {', '.join(sorted(pool)[:6])}, ..."


def region_hint(provider: str, region: str) -> str:
    """The closest known regions, for 'did you mean'."""
    return suggest(_probe(provider, region), catalog()[provider]["regions"].values)
