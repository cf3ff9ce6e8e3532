"""`render_init_config` and `write_new_config`: the explicit config `doit init` writes."""

from __future__ import annotations

import itertools
import re
import stat
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from stagegraph.configfile import parse_config
from stagegraph.errors import ConfigError, StagegraphError
from stagegraph.initconfig import ConfigWriteError, render_init_config, write_new_config
from stagegraph.schema.config import PROVIDER_SECTIONS, NebariConfig
from stagegraph.schema.introspect import walk_fields
from stagegraph.schema.secret import SecretRef, secret_fields

PROVIDERS = list(PROVIDER_SECTIONS)
AUTH_TYPES = ["password", "GitHub", "Auth0", "custom"]
OWNERS = {
    "project_name": "01-terraform-state",
    "namespace": "01-terraform-state",
    "terraform_state": "01-terraform-state",
    **{section: "02-infrastructure" for section in PROVIDER_SECTIONS.values()},
    "external_container_reg": "03-kubernetes-initialize",
    "domain": "04-kubernetes-ingress",
    "certificate": "04-kubernetes-ingress",
    "ingress": "04-kubernetes-ingress",
    "dns": "04-kubernetes-ingress",
    "security": "05-kubernetes-keycloak",
    "profiles": "07-kubernetes-services",
    "theme": "07-kubernetes-services",
    "monitoring": "07-kubernetes-services",
    "helm_extensions": "08-nebari-tf-extensions",
    "tf_extensions": "08-nebari-tf-extensions",
}
PASSWORD = "CANARY-init-password-42"
ALL_KEYS = {path.rsplit(".", 1)[-1] for path, *_ in walk_fields(NebariConfig)}
COMMENTED_KEY = re.compile(r"^(\s*)# ([A-Za-z0-9_]+):(\s|$)")


def _render(
    provider: str = "local",
    auth: str = "password",
    password: str | None = PASSWORD,
    domain: str | None = "demo.example.com",
    fill_placeholders: bool = True,
) -> str:
    """A new config, with its `<your ...>` placeholders filled in as a user would."""
    project = "example-project-123" if provider == "gcp" else None
    text = render_init_config(
        provider, "demo", domain, auth, OWNERS, root_password=password, gcp_project=project
    )
    return fill(text) if fill_placeholders else text


def fill(text: str) -> str:
    return re.sub(r"<your ([^<>]*)>", lambda m: m.group(1).replace(" ", "-"), text)


def test_gcp_needs_the_project_id() -> None:
    with pytest.raises(ConfigError) as caught:
        render_init_config("gcp", "demo", None, "password", OWNERS, root_password=PASSWORD)
    assert str(caught.value) == (
        "nebari-config.yaml: google_cloud_platform.project: required with --provider gcp; pass "
        "--gcp-project <id of your GCP project> (e.g. my-project-123)"
    )


def _set_top_level_keys(text: str) -> list[str]:
    return [line.split(":")[0] for line in text.splitlines() if re.match(r"^[a-z_]+:", line)]


def uncomment_defaults(text: str) -> str:
    """Uncomment every commented-out setting: remove the `# ` at each block's own column."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = COMMENTED_KEY.match(lines[i])
        if match is None or match[2] not in ALL_KEYS:
            out.append(lines[i])
            i += 1
            continue
        indent = match[1]
        block = [lines[i]]
        i += 1
        while i < len(lines) and (
            lines[i].startswith(indent + "#   ") or lines[i].startswith(indent + "# - ")
        ):
            block.append(lines[i])
            i += 1
        out += [line[: len(indent)] + line[len(indent) + 2 :] for line in block]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(("provider", "auth"), list(itertools.product(PROVIDERS, AUTH_TYPES)))
def test_output_validates_and_keeps_the_choices(provider: str, auth: str) -> None:
    text = _render(provider, auth, fill_placeholders=False)
    if "<your " in text:
        # Placeholders for what only the user knows are refused until filled in.
        with pytest.raises(ConfigError, match=r"security\.authentication\.config\.\w+: is a placeholder"):
            parse_config(text, "nebari-config.yaml")
    config = parse_config(fill(text), "nebari-config.yaml")
    assert config.provider == provider
    assert config.project_name == "demo"
    assert config.domain == "demo.example.com"
    assert config.security.authentication.type == auth
    password = config.security.keycloak.initial_root_password
    assert isinstance(password, SecretStr) and password.get_secret_value() == PASSWORD
    assert config.theme.jupyterhub.hub_title == "Nebari - demo"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_choices_are_uncommented(provider: str) -> None:
    text = _render(provider)
    expected = ["provider", "nebari_version", "project_name", "domain", "security", "theme"]
    if provider in ("aws", "gcp", "azure"):
        expected.append(PROVIDER_SECTIONS[provider])
    assert sorted(_set_top_level_keys(text)) == sorted(expected)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_the_chosen_provider_section_is_shown(provider: str) -> None:
    text = _render(provider)
    shown = {key for key in PROVIDER_SECTIONS.values() if re.search(rf"^(# )?{key}:", text, re.MULTILINE)}
    assert shown == {PROVIDER_SECTIONS[provider]}


@pytest.mark.parametrize(
    ("provider", "auth"), [("local", "password"), ("aws", "GitHub"), ("azure", "custom"), ("gcp", "Auth0")]
)
def test_uncommenting_the_defaults_changes_nothing(provider: str, auth: str) -> None:
    text = _render(provider, auth)
    uncommented = uncomment_defaults(text)
    assert uncommented != text
    before = parse_config(text, "c").model_dump(mode="json")
    after = parse_config(uncommented, "c").model_dump(mode="json")
    assert after == before
    # Every setting is now explicit: only descriptions and banners remain as comments.
    left = [m[2] for m in map(COMMENTED_KEY.match, uncommented.splitlines()) if m is not None]
    assert not set(left) & ALL_KEYS


def test_every_shown_key_is_preceded_by_its_description() -> None:
    text = _render("local")
    lines = text.splitlines()
    for name, field in NebariConfig.model_fields.items():
        key = field.alias or name
        index = next((i for i, line in enumerate(lines) if re.match(rf"^(# )?{key}:", line)), None)
        if key in ("amazon_web_services", "google_cloud_platform", "azure", "sandbox", "existing"):
            assert index is None
            continue
        assert index is not None, key
        assert field.description is not None
        assert lines[index - 1].startswith("# "), key
        assert field.description.split()[-1] in lines[index - 1], key


def test_banners_group_keys_under_their_stage_in_order() -> None:
    text = _render("local")
    banners = re.findall(r"^#{21} (.+) #{21}$", text, re.MULTILINE)
    assert banners == [
        "Main",
        "01-terraform-state",
        "02-infrastructure",
        "03-kubernetes-initialize",
        "04-kubernetes-ingress",
        "05-kubernetes-keycloak",
        "07-kubernetes-services",
        "08-nebari-tf-extensions",
    ]
    keycloak = text.split("##################### 05-kubernetes-keycloak #####################")[1]
    assert keycloak.split("#####################")[0].count("\nsecurity:") == 1
    main = text.split("##################### 01-terraform-state")[0]
    assert "\nprovider: local" in main and "# stagegraph:" in main


def test_without_owners_everything_is_main() -> None:
    text = render_init_config("local", "demo", None, "password", {})
    assert re.findall(r"^#{21} (.+) #{21}$", text, re.MULTILINE) == ["Main"]
    parse_config(text, "c")


@pytest.mark.parametrize("auth", ["GitHub", "Auth0", "custom"])
def test_oauth_secrets_are_sops_references_not_plaintext(auth: str) -> None:
    config = parse_config(_render("local", auth), "c")
    secrets = dict(secret_fields(config))
    reference = secrets["security.authentication.config.client_secret"]
    assert isinstance(reference, SecretRef)
    assert reference.sops == "secrets/authentication.enc.yaml"


def test_auth_type_is_case_insensitive() -> None:
    assert (
        parse_config(
            fill(render_init_config("local", "demo", None, "github", {})), "c"
        ).security.authentication.type
        == "GitHub"
    )


def test_without_a_password_the_field_is_commented() -> None:
    text = _render(password=None)
    config = parse_config(text, "c")
    assert config.security.keycloak.initial_root_password is None
    assert "\n  # keycloak:\n" in text


def test_password_is_quoted_when_yaml_needs_it() -> None:
    for password in ["123456", "- leading dash", "yes", "#hash", "null", "a: b"]:
        config = parse_config(_render(password=password), "c")
        value = config.security.keycloak.initial_root_password
        assert isinstance(value, SecretStr) and value.get_secret_value() == password


def test_no_domain_leaves_domain_commented() -> None:
    text = _render(domain=None)
    assert "\n# domain: null\n" in text
    assert parse_config(text, "c").domain is None


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("local", "1bad", None, "password"), "nebari-config.yaml: project_name: should be 3 to 16 letters"),
        (
            ("moon", "demo", None, "password"),
            "nebari-config.yaml: provider: should be one of sandbox, local, existing, aws, gcp, azure (got 'moon')",
        ),
        (
            ("local", "demo", None, "ldap"),
            "nebari-config.yaml: security.authentication.type: should be one of password, GitHub, Auth0, custom (got 'ldap')",
        ),
    ],
)
def test_bad_choices_raise_config_errors(args: tuple[str, str, str | None, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        render_init_config(*args, {})
    assert caught.value.problems[0].startswith(problem)


def test_render_and_write_print_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _render()
    write_new_config(tmp_path / "nebari-config.yaml", text)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_write_creates_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "nebari-config.yaml"
    write_new_config(path, "project_name: demo\n")
    assert path.read_text() == "project_name: demo\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "nebari-config.yaml"
    path.write_text("original\n")
    with pytest.raises(ConfigWriteError) as caught:
        write_new_config(path, "new\n")
    assert isinstance(caught.value, StagegraphError)
    assert str(caught.value) == f"{path}: already exists; refusing to overwrite it (move it away first)"
    assert path.read_text() == "original\n"


def test_write_into_a_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "nebari-config.yaml"
    with pytest.raises(
        ConfigWriteError, match=r"cannot create the file .*check the folder exists and is writable"
    ):
        write_new_config(path, "x\n")


PROJECT_NAMES = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{1,14}[A-Za-z0-9]\Z")
DOMAINS = st.lists(st.from_regex(r"\A[a-z][a-z0-9-]{0,10}[a-z0-9]\Z"), min_size=2, max_size=4).map(".".join)
PASSWORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(
    provider=st.sampled_from(PROVIDERS),
    auth=st.sampled_from(AUTH_TYPES),
    name=PROJECT_NAMES,
    domain=DOMAINS,
    password=PASSWORDS,
)
def test_any_valid_choice_round_trips(
    provider: str, auth: str, name: str, domain: str, password: str
) -> None:
    project = "example-project-123" if provider == "gcp" else None
    # On a cloud the cluster, registry and buckets are named after the project, and those
    # names take lowercase letters, digits and hyphens only (schema/cloud_names.py).
    name = re.sub(r"[-_]+", "-", name.lower()) if provider in ("aws", "gcp", "azure") else name
    text = fill(
        render_init_config(provider, name, domain, auth, OWNERS, root_password=password, gcp_project=project)
    )
    config = parse_config(text, "c")
    assert (config.provider, config.project_name, config.domain, config.security.authentication.type) == (
        provider,
        name,
        domain,
        auth,
    )
    value = config.security.keycloak.initial_root_password
    assert isinstance(value, SecretStr) and value.get_secret_value() == password
    assert yaml.safe_load(text)["project_name"] == name
