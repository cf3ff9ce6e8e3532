"""The 045-hello stage: its render, where it lands, and its settings (no install needed).

These tests import the plugin from its source tree and use stagegraph's own functions the
way the engine does: render the stage from a config, build the graph with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from stagegraph_hello.stage import STAGE, HelloInputs

from stagegraph.configfile import parse_config
from stagegraph.graph import build_graph
from stagegraph.lockfile import Lockfile, ProviderPin, load_lockfile
from stagegraph.plugins.errors import PluginSettingsError
from stagegraph.render import render_stage
from stagegraph.stage import Upstream
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs

#: The stagegraph repository this example lives in (for its lockfile).
REPO = Path(__file__).resolve().parents[4]
CONFIG = """
provider: {provider}
project_name: demo
domain: demo.example.com
stagegraph:
  plugins:
    enabled: [hello]
"""


@pytest.fixture(scope="module")
def lock() -> Lockfile:
    return load_lockfile(REPO / "lockfiles" / "versions.yaml")


def render(lock: Lockfile, provider: str = "sandbox", **hello: Any) -> dict[str, Any]:
    data = yaml.safe_load(CONFIG.format(provider=provider))
    if hello:
        data["stagegraph"]["plugins"]["settings"] = {"hello": hello}
    config = parse_config(yaml.safe_dump(data), "nebari-config.yaml")
    rendered = render_stage(STAGE, config, lock, "lockfiles/versions.yaml")
    main: dict[str, Any] = yaml.safe_load(rendered.files["main.tf.json"])
    return main


def test_the_sandbox_render_is_a_terraform_data_twin_of_the_config_map(lock: Lockfile) -> None:
    main = render(lock, greeting="Bonjour")
    twin = main["resource"]["terraform_data"]["kubernetes_config_map__hello"]
    assert twin["input"]["data"] == {"message": "Bonjour, world, from https://${var.domain}"}
    assert "provider" not in main and "required_providers" not in main["terraform"]
    assert (
        main["output"]["message"]["value"]
        == "${terraform_data.kubernetes_config_map__hello.output.data.message}"
    )


def test_a_real_render_creates_the_config_map_with_the_pinned_provider(lock: Lockfile) -> None:
    main = render(lock, provider="local")
    assert main["resource"]["kubernetes_config_map"]["hello"]["metadata"] == [
        {"name": "hello", "namespace": "${var.namespace}"}
    ]
    pin = lock.pin("providers.kubernetes")
    assert isinstance(pin, ProviderPin)
    assert main["terraform"]["required_providers"]["kubernetes"]["version"] == f"= {pin.version}"


def test_config_text_never_becomes_a_terraform_template(lock: Lockfile) -> None:
    main = render(lock, greeting='${file("/etc/passwd")}')
    message = main["resource"]["terraform_data"]["kubernetes_config_map__hello"]["input"]["data"]["message"]
    assert message.startswith('$${file("/etc/passwd")}, world')


def test_a_typo_in_the_section_is_reported_with_its_full_path(lock: Lockfile) -> None:
    with pytest.raises(PluginSettingsError) as err:
        render(lock, greting="Hi")
    assert str(err.value) == (
        "nebari-config.yaml: stagegraph.plugins.settings.hello.greting: unknown key; "
        "did you mean 'greeting'? (got 'Hi')"
    )


def test_it_lands_between_the_ingress_and_keycloak() -> None:
    names = build_graph([*BUILTIN_STAGES, STAGE]).names
    at = names.index("045-hello")
    assert names[at - 1 : at + 2] == ["04-kubernetes-ingress", "045-hello", "05-kubernetes-keycloak"]


def test_it_reads_the_ingress_outputs_by_type() -> None:
    up = Upstream(
        "045-hello",
        {
            "02-infrastructure": InfrastructureOutputs.model_validate(
                {**_mock("02-infrastructure"), "kubeconfig_path": "/k", "kube_context": "kind-demo"}
            ),
            "03-kubernetes-initialize": _mock_model("03-kubernetes-initialize"),
            "04-kubernetes-ingress": IngressOutputs(
                load_balancer_address="127.0.0.1", domain="demo.example.com", certificate_type="self-signed"
            ),
        },
    )
    inputs = STAGE.connect(up)
    assert isinstance(inputs, HelloInputs)
    assert (inputs.kubeconfig_path, inputs.domain) == ("/k", "demo.example.com")


def _mock(name: str) -> dict[str, Any]:
    stage = next(s for s in BUILTIN_STAGES if s.name == name)
    assert stage.mock_outputs is not None
    return stage.mock_outputs.model_dump()


def _mock_model(name: str) -> InitializeOutputs:
    return InitializeOutputs.model_validate(_mock(name))
