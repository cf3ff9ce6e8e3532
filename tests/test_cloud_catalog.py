"""Regions and machine types as data with provenance (`lockfiles/cloud-catalog.json`).

What a maintainer relies on: every list says where it came from and when; the AWS lists
are those of the botocore this release pins, and `doit cloud_catalog` rebuilds them offline
and says what changed; validate refuses a name not on the lists in one line.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import botocore
import pytest
from sandboxproject import SandboxProject

from stagegraph.cloudcatalog import aws_listings, dump_catalog, refresh
from stagegraph.schema.cloud_catalog import KINDS, catalog, catalog_path, known_region, parse_catalog
from stagegraph.schema.cloud_instances import instance_problem

BOTOCORE_DATA = Path(botocore.__file__).parent / "data"


def test_every_list_says_where_it_came_from_and_when() -> None:
    for cloud, kinds in KINDS.items():
        for kind in kinds:
            listing = catalog()[cloud][kind]
            assert listing.values, (cloud, kind)
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", listing.retrieved), (cloud, kind)
            assert listing.source.startswith(("botocore ", "https://")), (cloud, kind)


def test_the_aws_lists_are_those_of_the_pinned_botocore() -> None:
    # After `doit bump --group python` moved boto3, run `doit cloud_catalog` (README).
    fresh = aws_listings(BOTOCORE_DATA, botocore.__version__, "2000-01-01")
    for kind in KINDS["aws"]:
        assert catalog()["aws"][kind].values == frozenset(fresh[kind]["values"]), (
            f"aws {kind} differs from botocore {botocore.__version__}: run doit cloud_catalog"
        )
        assert catalog()["aws"][kind].source == fresh[kind]["source"]


def test_the_packaged_file_is_written_as_the_refresh_writes_it() -> None:
    text = catalog_path().read_text(encoding="utf-8")
    assert dump_catalog(json.loads(text)) == text  # a refresh of unchanged data is no diff


def _fake_botocore(root: Path, regions: list[str], types: list[str]) -> Path:
    """A botocore data folder with only what the refresh reads (a fake, by name)."""
    (root / "ec2" / "2014-01-01").mkdir(parents=True)
    (root / "ec2" / "2016-11-15").mkdir(parents=True)
    endpoints = {
        "partitions": [
            {"partition": "aws", "regions": {r: {} for r in regions}},
            {"partition": "aws-cn", "regions": {"cn-north-1": {}}},
            {"partition": "aws-us-gov", "regions": {"us-gov-west-1": {}}},
        ]
    }
    (root / "endpoints.json").write_text(json.dumps(endpoints))
    old = {"shapes": {"InstanceType": {"enum": ["m1.small"]}}}
    (root / "ec2" / "2014-01-01" / "service-2.json").write_text(json.dumps(old))
    new = {"shapes": {"InstanceType": {"enum": types}}}
    (root / "ec2" / "2016-11-15" / "service-2.json.gz").write_bytes(gzip.compress(json.dumps(new).encode()))
    return root


def test_refresh_reads_botocore_offline_and_reports_what_changed(tmp_path: Path) -> None:
    data = _fake_botocore(tmp_path, ["us-east-1", "xx-new-1"], ["m5.large", "z9.large"])
    aws = aws_listings(data, "9.9.9", "2031-02-03")
    assert aws["regions"]["values"] == ["us-east-1", "us-gov-west-1", "xx-new-1"]  # no China
    assert aws["instance_types"]["values"] == ["m5.large", "z9.large"]  # the newest API model
    assert (
        aws["instance_types"]["source"]
        == "botocore 9.9.9 data/ec2/2016-11-15/service-2.json, shape InstanceType"
    )
    doc = json.loads(catalog_path().read_text(encoding="utf-8"))
    new, lines = refresh(doc, aws)
    assert new["gcp"] == doc["gcp"] and new["azure"] == doc["azure"]  # hand-kept lists stay
    assert new["aws"]["regions"]["retrieved"] == "2031-02-03"
    assert lines[0].startswith("aws regions: 3 from botocore 9.9.9")
    assert "+1 (xx-new-1)" in lines[0] and re.search(r"; .*-\d+ \(af-south-1, ", lines[0])
    assert "+1 (z9.large)" in lines[1]
    assert any(line.startswith("gcp regions:") and "edit this list by hand" in line for line in lines)
    # The new file is valid input for validate.
    assert "xx-new-1" in parse_catalog(dump_catalog(new))["aws"]["regions"].values


def test_refresh_without_an_ec2_model_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "ec2").mkdir()
    (tmp_path / "endpoints.json").write_text(json.dumps({"partitions": []}))
    with pytest.raises(FileNotFoundError, match="no EC2 API model"):
        aws_listings(tmp_path, "1", "2031-01-01")


@pytest.mark.parametrize(
    ("provider", "region", "known"),
    [
        ("aws", "us-east-1", True),
        ("aws", "us-east-12", False),
        ("aws", "cn-north-1", False),  # China needs a partition of its own
        ("gcp", "europe-west4", True),
        ("azure", "Central US", True),  # Azure's display name, compared as its short name
        ("azure", "centralus", True),
        ("azure", "Central USA", False),
    ],
)
def test_regions_are_checked_against_the_data(provider: str, region: str, known: bool) -> None:
    assert known_region(provider, region) is known


@pytest.mark.parametrize(
    ("provider", "instance", "problem"),
    [
        ("aws", "g5.xlarge", None),
        ("aws", "m7.xlarge", "not an AWS instance type this release knows; did you mean"),
        ("gcp", "n2d-highmem-4", None),
        ("gcp", "custom-4-16384", None),
        ("gcp", "e3-standard-4", "'e3' is not a GCP machine family"),
        ("azure", "Standard_NC6s_v3", None),
        ("azure", "Standard_Q8_v3", "'Q' is not an Azure VM series"),
    ],
)
def test_machine_types_are_checked_against_the_data(
    provider: str, instance: str, problem: str | None
) -> None:
    found = instance_problem(provider, instance, gpu=False)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


@pytest.mark.slow
def test_cloud_catalog_outside_a_source_checkout_is_refused(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    before = catalog_path().read_bytes()
    proc = project.doit("cloud_catalog", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "not part of this folder; run `doit cloud_catalog` in a stagegraph source checkout" in out
    assert "Traceback" not in out
    assert catalog_path().read_bytes() == before
