"""`doit cloud_catalog`: refresh the regions and machine types of `lockfiles/cloud-catalog.json`.

The AWS lists come from data botocore ships (its endpoint partitions and the EC2 API model's
`InstanceType` enum), so a maintainer refreshes them offline after `doit bump --group python`
moved boto3: this reads the installed botocore, rewrites the AWS entries with their new
source and date, and says what changed. GCP and Azure publish no such data in any package
this project installs; their lists are edited by hand from the pages their `source` names,
and this command reports how old they are so nobody forgets them.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from stagegraph.schema.cloud_catalog import KINDS

#: The commercial partition and GovCloud: the ones an EKS cluster is made in with public
#: endpoints (China and the isolated partitions need credentials of their own partition).
AWS_PARTITIONS = ("aws", "aws-us-gov")


def _read_json(path: Path) -> Any:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def aws_listings(data_dir: Path, version: str, today: str) -> dict[str, dict[str, Any]]:
    """The AWS regions and instance types in botocore's data folder `data_dir`."""
    endpoints = _read_json(data_dir / "endpoints.json")
    regions = sorted(
        region
        for partition in endpoints["partitions"]
        if partition["partition"] in AWS_PARTITIONS
        for region in partition["regions"]
    )
    models = sorted((data_dir / "ec2").glob("*/service-2.json*"))
    if not models:
        raise FileNotFoundError(f"{data_dir / 'ec2'}: no EC2 API model (service-2.json) in it")
    newest = models[-1]  # API versions are dated folders: the last sorts newest
    types = sorted(_read_json(newest)["shapes"]["InstanceType"]["enum"])
    where = f"botocore {version}"
    return {
        "regions": {
            "source": f"{where} data/endpoints.json, partitions {' and '.join(AWS_PARTITIONS)}",
            "retrieved": today,
            "values": regions,
        },
        "instance_types": {
            "source": f"{where} data/ec2/{newest.parent.name}/service-2.json, shape InstanceType",
            "retrieved": today,
            "values": types,
        },
    }


def dump_catalog(doc: dict[str, Any]) -> str:
    """The file's text: one name per line, so a refresh reads as a diff of names."""
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def refresh(doc: dict[str, Any], aws: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """`doc` with its AWS lists replaced, and one line per list saying what changed."""
    out = {**doc, "aws": {**doc.get("aws", {}), **aws}}
    lines = []
    for kind, entry in aws.items():
        before = set(doc.get("aws", {}).get(kind, {}).get("values", []))
        after = set(entry["values"])
        added, removed = sorted(after - before), sorted(before - after)
        change = ", ".join(
            part
            for part in (
                f"+{len(added)} ({', '.join(added[:5])}{', ...' if len(added) > 5 else ''})" if added else "",
                f"-{len(removed)} ({', '.join(removed[:5])}{', ...' if len(removed) > 5 else ''})"
                if removed
                else "",
            )
            if part
        )
        lines.append(f"aws {kind}: {len(after)} from {entry['source']}; {change or 'no change'}")
    for cloud in ("gcp", "azure"):
        for kind in KINDS[cloud]:
            entry = out[cloud][kind]
            lines.append(
                f"{cloud} {kind}: {len(entry['values'])} from {entry['source']}, {entry['retrieved']}; "
                "if that page changed, edit this list by hand (and its retrieved date)"
            )
    return out, lines


def refresh_action(path: Path, today: str) -> str:
    """Refresh the catalog at `path` from the installed botocore; the report to print."""
    import botocore

    data_dir = Path(botocore.__file__).parent / "data"
    doc = json.loads(path.read_text(encoding="utf-8"))
    new, lines = refresh(doc, aws_listings(data_dir, botocore.__version__, today))
    path.write_text(dump_catalog(new), encoding="utf-8")
    return "\n".join([f"wrote {path}", *lines])
