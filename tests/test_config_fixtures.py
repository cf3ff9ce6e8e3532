"""Every config fixture: `*.happy.yaml` must load, `*.error.<reason>.yaml` must fail with
exactly the problems listed in its leading `# expect:` lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagegraph.configfile import load_config
from stagegraph.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
HAPPY = sorted(FIXTURES.glob("*.happy.yaml"))
ERRORS = sorted(FIXTURES.glob("*.error.*.yaml"))
EXPECT = "# expect: "


def test_fixture_sets_are_not_empty() -> None:
    assert len(HAPPY) >= 8
    assert len(ERRORS) >= 20


@pytest.mark.parametrize("path", HAPPY, ids=lambda p: p.name)
def test_happy_fixture_loads(path: Path) -> None:
    config = load_config(path, display_name="nebari-config.yaml")
    # A dump is valid input again (secrets come back masked, which is still a valid value).
    again = type(config).model_validate(config.model_dump(mode="json"))
    assert again.model_dump(mode="json") == config.model_dump(mode="json")


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.name)
def test_error_fixture_fails_as_expected(path: Path) -> None:
    expected = [line[len(EXPECT) :] for line in path.read_text().splitlines() if line.startswith(EXPECT)]
    assert expected, f"{path.name} has no '{EXPECT}' line"
    with pytest.raises(ConfigError) as caught:
        load_config(path, display_name="nebari-config.yaml")
    assert caught.value.problems == expected
    assert str(caught.value) == "\n".join(expected)


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.name)
def test_error_fixtures_never_show_marked_secrets(path: Path) -> None:
    # Fixtures mark secret values with "do-not-show" or "hunter2".
    with pytest.raises(ConfigError) as caught:
        load_config(path, display_name="nebari-config.yaml")
    assert "do-not-show" not in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_nebari_written_configs_keep_their_values() -> None:
    local = load_config(FIXTURES / "shared-local.happy.yaml")
    assert local.provider == "local"
    assert local.local is not None and local.local.kube_context is None
    assert local.security.authentication.type == "password"
    assert local.theme.jupyterhub.hub_title == "Nebari - demo"
    github = load_config(FIXTURES / "nebari-local-github-letsencrypt.happy.yaml")
    assert github.certificate.type == "lets-encrypt"
    assert github.ci_cd.type == "github-actions"
    assert github.terraform_state.type == "local"


def test_sandbox_is_the_default_provider_and_its_section_is_filled_in() -> None:
    config = load_config(FIXTURES / "sandbox.happy.yaml")
    assert config.provider == "sandbox"
    assert config.sandbox is not None
    assert sorted(config.sandbox.node_selectors) == ["general", "user", "worker"]
    assert config.provider_section is config.sandbox


def test_taints_accept_the_kubectl_string_form() -> None:
    config = load_config(FIXTURES / "aws.happy.yaml")
    assert config.amazon_web_services is not None
    groups = config.amazon_web_services.node_groups
    assert groups["user"].taints == groups["worker"].taints
    assert groups["general"].taints == []
    assert groups["gpu"].taints is None
