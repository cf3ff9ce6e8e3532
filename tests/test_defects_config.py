"""Issue 11, defects 7 and 9: Nebari's own configs and defaults, read as Nebari reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagegraph.configfile import load_config, parse_config
from stagegraph.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "configs"


def test_a_config_without_provider_is_local_as_in_nebari() -> None:
    config = load_config(FIXTURES / "nebari-minimal.happy.yaml")
    assert config.provider == "local"
    assert config.local is not None


def test_the_sandbox_is_this_repository_s_explicit_choice() -> None:
    assert "\nprovider: sandbox\n" in (ROOT / "nebari-config.yaml").read_text()
    assert load_config(ROOT / "nebari-config.yaml").provider == "sandbox"
    # A sandbox section alone still picks the sandbox (Nebari's rule for provider sections).
    assert load_config(FIXTURES / "sandbox.happy.yaml").provider == "sandbox"


def test_nebari_explicit_certificate_fields_are_accepted() -> None:
    cert = load_config(FIXTURES / "nebari-explicit-certificate.happy.yaml").certificate
    assert cert.type == "self-signed"
    assert (cert.secret_name, cert.acme_email) == (None, None)
    assert cert.acme_challenge_type == "tls"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "acme_email",
            "ops@example.com",
            "not used with type self-signed; remove it (it is read only with type lets-encrypt)",
        ),
        ("acme_server", "https://acme-staging.example/dir", "not used with type self-signed"),
        (
            "secret_name",
            "my-tls",
            "not used with type self-signed; remove it (it is read only with type existing)",
        ),
    ],
)
def test_a_value_the_type_does_not_use_is_refused(field: str, value: str, message: str) -> None:
    text = (FIXTURES / "nebari-explicit-certificate.happy.yaml").read_text()
    line = next(x for x in text.splitlines() if x.strip().startswith(f"{field}:"))
    with pytest.raises(ConfigError) as caught:
        parse_config(text.replace(line, f"  {field}: {value}"), "nebari-config.yaml")
    assert str(caught.value).startswith(f"nebari-config.yaml: certificate.{field}: {message}")


# --- defect 8: fields accepted and then ignored -------------------------------------------

EXTENSION = """
tf_extensions:
  - name: app
    image: example/app:1
    urlslug: app
    {flag}: true
"""


@pytest.mark.parametrize("flag", ["oauth2client", "keycloakadmin", "jwt", "nebariconfigyaml"])
def test_nebari_extension_switches_that_would_be_ignored_are_refused(flag: str) -> None:
    text = (ROOT / "nebari-config.yaml").read_text() + EXTENSION.format(flag=flag)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "nebari-config.yaml")
    assert str(caught.value) == (
        f"nebari-config.yaml: tf_extensions.0.{flag}: true is not supported yet (stagegraph would ignore "
        "it); set it to false, and use private: true to put the platform's Keycloak login in front of the app "
        "(got true)"
    )
    # Written as Nebari writes them (false), they are accepted.
    parse_config(text.replace(f"{flag}: true", f"{flag}: false"), "nebari-config.yaml")


def test_kuberhealthy_helm_version_accepts_nebari_default_and_refuses_others() -> None:
    base = "project_name: demo\nprovider: sandbox\nmonitoring:\n  healthchecks:\n    kuberhealthy_helm_version: {v}\n"
    assert (
        parse_config(base.format(v='"100"'), "c").monitoring.healthchecks.kuberhealthy_helm_version == "100"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(base.format(v='"103"'), "nebari-config.yaml")
    assert (
        "monitoring.healthchecks.kuberhealthy_helm_version: stagegraph deploys Kuberhealthy from manifests"
        in str(caught.value)
    )


@pytest.mark.parametrize("worker", ["", "conda_store:\n  worker: null\n"])
def test_conda_store_worker_defaults_apply_when_the_section_is_left_out(worker: str) -> None:
    from checkhelpers import doc, render_text

    stages = render_text((ROOT / "nebari-config.yaml").read_text() + worker)
    # The build worker is its own Deployment (the server only serves): the defaults size it.
    worker = doc(stages, "07-kubernetes-services")["locals"]["conda_store_worker_manifest"]
    resources = worker["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": 2, "memory": "6Gi"}, "requests": {"cpu": 1, "memory": "4Gi"}}
