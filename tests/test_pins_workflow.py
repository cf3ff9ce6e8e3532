"""The files around the bump: the Renovate example, the quarterly workflow, the changelog."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from stagegraph.lockfile import load_lockfile
from stagegraph.pins.cadence import ROTATION
from stagegraph.pins.changelog import HEADER
from stagegraph.pins.pyproject import normalize
from stagegraph.pins.sources import value_of

ROOT = Path(__file__).resolve().parents[1]
LOCKFILE = ROOT / "lockfiles" / "versions.yaml"


def renovate_matches() -> dict[tuple[str, str], str]:
    """(datasource, depName) -> currentValue for every match of renovate.json's regexes."""
    config = json.loads((ROOT / "renovate.json").read_text())
    text = LOCKFILE.read_text()
    found: dict[tuple[str, str], str] = {}
    for manager in config["customManagers"]:
        assert manager["customType"] == "regex"
        pattern = manager["managerFilePatterns"][0]
        if not re.search(pattern.strip("/"), "lockfiles/versions.yaml"):
            continue  # pyproject.toml's manager: test_renovate_moves_pyproject_with_the_lockfile
        for js in manager["matchStrings"]:
            # JavaScript spells named groups (?<name>...); Python (?P<name>...).
            for m in re.finditer(js.replace("(?<", "(?P<"), text):
                datasource = m.groupdict().get("datasource") or manager["datasourceTemplate"]
                key = (datasource, m["depName"])
                assert key not in found, f"matched twice: {key}"
                found[key] = m["currentValue"]
    return found


def test_renovate_example_finds_every_pin_with_its_version() -> None:
    lock = load_lockfile(LOCKFILE)
    found = renovate_matches()
    expected = {("github-releases", "hashicorp/terraform"): lock.terraform.version}
    expected[("docker", lock.kubernetes.kind_node_image.image)] = lock.kubernetes.kind_node_image.tag
    expected |= {("terraform-provider", p.source): p.version for p in lock.providers.values()}
    expected |= {("helm", c.chart): c.version for c in lock.helm_charts.values()}
    expected |= {("docker", i.image): i.tag for i in lock.images.values()}
    expected |= {("pypi", name): p.version for name, p in lock.python.items()}
    assert found == expected
    # max_version is derived from the kind node image, not looked up: nothing matches it.
    assert lock.kubernetes.max_version.version not in [v for k, v in found.items() if k[0] != "docker"]


def test_renovate_moves_pyproject_with_the_lockfile() -> None:
    """pyproject.toml pins the Python versions too: Renovate finds each, in the python group."""
    config = json.loads((ROOT / "renovate.json").read_text())
    (manager,) = [m for m in config["customManagers"] if "pyproject" in m["managerFilePatterns"][0]]
    assert re.search(manager["managerFilePatterns"][0].strip("/"), "pyproject.toml")
    text = (ROOT / "pyproject.toml").read_text()
    found = {
        normalize(m["depName"]): m["currentValue"]
        for js in manager["matchStrings"]
        for m in re.finditer(js.replace("(?<", "(?P<"), text)
    }
    lock = load_lockfile(LOCKFILE)
    assert found == {name: pin.version for name, pin in lock.python.items()}
    python_rule = next(r for r in config["packageRules"] if r.get("groupName") == "pins python")
    assert manager["datasourceTemplate"] in python_rule["matchDatasources"]


def test_quarterly_pull_request_carries_pyproject() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "quarterly-bump.yml").read_text())
    pr = next(s for s in workflow["jobs"]["bump"]["steps"] if "create-pull-request" in str(s.get("uses")))
    assert "pyproject.toml" in pr["with"]["add-paths"].split()


def test_renovate_holds_what_the_lockfile_holds() -> None:
    config = json.loads((ROOT / "renovate.json").read_text())
    lock = load_lockfile(LOCKFILE)
    held = {p.source for p in lock.providers.values() if p.policy == "hold"}
    capped = {
        name for rule in config["packageRules"] if "allowedVersions" in rule for name in rule["matchDepNames"]
    }
    assert held == capped
    quarterly = sorted({rule["schedule"][0] for rule in config["packageRules"] if "schedule" in rule})
    assert quarterly == ["* 0-6 1 1 *", "* 0-6 1 10 *", "* 0-6 1 4 *", "* 0-6 1 7 *"]


def test_quarterly_workflow_runs_the_bump_and_opens_a_pull_request() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "quarterly-bump.yml").read_text())
    on = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert on["schedule"] == [{"cron": "0 6 1 1,4,7,10 *"}]
    assert len(ROTATION) == 4  # one group per scheduled run, a full rotation a year
    steps = workflow["jobs"]["bump"]["steps"]
    script = "\n".join(s.get("run", "") for s in steps)
    assert "--index-url https://pypi.org/simple" in script
    assert "python -m doit" in script and "bump --apply --report" in script
    pr = next(s for s in steps if str(s.get("uses", "")).startswith("peter-evans/create-pull-request@"))
    assert pr["with"]["body-path"].endswith("pr-body.md")
    assert "lockfiles/versions.yaml" in pr["with"]["add-paths"]


def test_changelog_starts_with_the_header_bump_appends_to() -> None:
    assert (ROOT / "lockfiles" / "CHANGELOG.md").read_text().startswith(HEADER)


def test_every_pin_value_is_a_quoted_string_renovate_and_bump_can_rewrite() -> None:
    lock = load_lockfile(LOCKFILE)
    text = LOCKFILE.read_text()
    keys = lock.keys()  # the Lockfile method: iterating a pydantic model yields its fields
    for key in keys:
        assert f'"{value_of(lock.pin(key))}"' in text, key
