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
    line = next(l for l in text.splitlines() if l.strip().startswith(f"{field}:"))
    with pytest.raises(ConfigError) as caught:
        parse_config(text.replace(line, f"  {field}: {value}"), "nebari-config.yaml")
    assert str(caught.value).startswith(f"nebari-config.yaml: certificate.{field}: {message}")
