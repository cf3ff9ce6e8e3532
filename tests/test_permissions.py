"""Permission scopes (Nebari's RBAC proposal): the parser, the config section, the render.

What a user checks: every scope of the proposal parses; a bad scope is a config error that
names the role, the list item and the bad part; roles land in Keycloak as client roles whose
attributes carry the component and the scopes, attached to the groups the config names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegraph.configfile import parse_config
from stagegraph.errors import ConfigError, StagegraphError
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.permissions import BUILTIN_ROLES, Component
from stagegraph.stages import keycloak_configuration
from stagegraph.stages.permissions import ACCESS_LEVELS, Scope, ScopeError, near_access_level, parse_scope

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
FILE = "nebari-config.yaml"

# --- the parser -------------------------------------------------------------------------------

RFD_SCOPES = {
    "create:shared": Scope("shared", access="create"),
    "read:shared!shared=pycon": Scope("shared", access="read", object="shared", object_name="pycon"),
    "write:shared!shared=pycon": Scope("shared", access="write", object="shared", object_name="pycon"),
    "read:conda-store!namespace=pycon": Scope("conda-store", "read", object="namespace", object_name="pycon"),
    "write:conda-store!namespace=pycon": Scope(
        "conda-store", "write", object="namespace", object_name="pycon"
    ),
    "shares!user": Scope("shares", object="user"),
    "read:users:name": Scope("users", access="read", subresource="name"),
    "read:groups:name": Scope("groups", access="read", subresource="name"),
    "read:services": Scope("services", access="read"),
    "write:shared-mount": Scope("shared-mount", access="write"),
    "conda-store": Scope("conda-store"),
    "access:servers!server=alice/lab": Scope("servers", "access", object="server", object_name="alice/lab"),
}


@pytest.mark.parametrize("text", sorted(RFD_SCOPES))
def test_every_scope_of_the_proposal_parses(text: str) -> None:
    assert parse_scope(text) == RFD_SCOPES[text]
    assert str(parse_scope(text)) == text


BAD_SCOPES = [
    # (scope, the part the error names, words the message must hold)
    ("", "", "empty"),
    ("read:shared!shared=", "!shared=", "after '='"),
    ("reed:shared", "reed", "did you mean 'read'"),
    ("read", "read", "needs a resource"),
    ("read::name", "read::name", "empty part"),
    ("read:users:name:extra", "extra", "one ':' part too many"),
    ("read:Shared", "Shared", "resource 'Shared'"),
    ("read:users:Name", "Name", "subresource 'Name'"),
    ("read:shared!", "!", "nothing after '!'"),
    ("read:shared!shared=a!b", "!shared=a!b", "more than one '!'"),
    ("read:shared!Shared=pycon", "Shared", "object 'Shared'"),
    ("read:shared!shared=py=con", "py=con", "object name 'py=con'"),
    ("read:shared,write:shared", "read:shared,write:shared", "no ','"),
    ("read: shared", "read: shared", "no spaces"),
    ("!shared=pycon", "!shared=pycon", "no resource before '!'"),
]


@pytest.mark.parametrize(("text", "part", "words"), BAD_SCOPES)
def test_a_bad_scope_names_the_bad_part(text: str, part: str, words: str) -> None:
    with pytest.raises(ScopeError) as caught:
        parse_scope(text)
    assert caught.value.part == part
    assert words in caught.value.problem
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, StagegraphError)


# Explicit strategies (st.builds would ignore the grammar's regexes).
names = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
# Without an access level, a resource that is (or looks like a typo of) an access level is
# read as one, so such words only appear after an explicit access level.
plain_resources = names.filter(lambda n: n not in ACCESS_LEVELS and near_access_level(n) is None)
object_names = st.from_regex(r"[A-Za-z0-9._@/*+-]{1,12}", fullmatch=True)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    access = draw(st.none() | st.sampled_from(ACCESS_LEVELS))
    subresource = draw(st.none() | names)
    resource = draw(names if access is not None else plain_resources)
    obj = draw(st.none() | names)
    name = draw(object_names) if obj is not None and draw(st.booleans()) else None
    return Scope(resource, access=access, subresource=subresource, object=obj, object_name=name)


@given(scopes())
def test_printing_then_parsing_gives_the_same_scope(scope: Scope) -> None:
    assert parse_scope(str(scope)) == scope


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_any_text_parses_and_round_trips_or_fails_naming_a_part_of_it(text: str) -> None:
    try:
        scope = parse_scope(text)
    except ScopeError as err:
        assert err.part in text
        assert err.scope == text
        assert "\n" not in err.problem
    else:
        assert str(scope) == text


@given(scopes(), st.sampled_from([" ", ",", "\t"]), st.data())
def test_a_space_or_comma_anywhere_is_refused(scope: Scope, bad: str, data: st.DataObject) -> None:
    text = str(scope)
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    with pytest.raises(ScopeError, match="list each scope as its own item"):
        parse_scope(text[:at] + bad + text[at:])


# --- the config section ---------------------------------------------------------------------------


def _config(security: dict[str, Any]) -> str:
    return yaml.safe_dump({"project_name": "demo", "domain": "demo.example.com", "security": security})


def _problems(security: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(security), FILE)
    return caught.value.problems


ROLE = {"name": "pycon-read", "component": "shared-directory", "scopes": ["read:shared!shared=pycon"]}


def test_a_bad_scope_is_a_config_error_naming_role_item_and_part() -> None:
    role = {**ROLE, "scopes": ["read:shared!shared=pycon", "read:shared!shared="]}
    assert _problems({"roles": [role]}) == [
        "nebari-config.yaml: security.roles.0.scopes.1: role 'pycon-read': the name after '=' in "
        "'!shared=' is empty; a scope reads [<access>:]<resource>[:<subresource>][!<object>[=<name>]] "
        "(got 'read:shared!shared=')"
    ]


def test_a_role_must_name_groups_that_exist() -> None:
    (problem,) = _problems({"roles": [{**ROLE, "groups": ["analyst", "pycon"]}]})
    assert problem.startswith(
        "nebari-config.yaml: security.roles.0.groups.1: role 'pycon-read': group 'pycon'"
    )
    assert "add it to security.groups" in problem
    config = parse_config(_config({"groups": ["pycon"], "roles": [{**ROLE, "groups": ["pycon"]}]}), FILE)
    assert config.security.roles[0].groups == ["pycon"]


def test_the_users_group_exists_only_with_the_shared_users_group() -> None:
    role = {**ROLE, "groups": ["users"]}
    assert parse_config(_config({"roles": [role]}), FILE).security.roles[0].groups == ["users"]
    (problem,) = _problems({"shared_users_group": False, "roles": [role]})
    assert "group 'users' does not exist (security.shared_users_group is off)" in problem


@pytest.mark.parametrize(
    ("security", "where", "words"),
    [
        ({"groups": ["admin"]}, "security.groups.0", "is a default group already"),
        ({"groups": ["pycon", "pycon"]}, "security.groups.1", "listed twice (also groups.0)"),
        ({"groups": ["py con"]}, "security.groups.0", "letters, digits, - or _"),
        ({"roles": [ROLE, ROLE]}, "security.roles.1.name", "defined twice (also roles.0)"),
        ({"roles": [{**ROLE, "name": "grafana_admin"}]}, "security.roles.0.name", "built-in Nebari role"),
        ({"roles": [{**ROLE, "scopes": []}]}, "security.roles.0.scopes", "at least 1 item"),
        ({"roles": [{**ROLE, "component": "jupyter"}]}, "security.roles.0.component", "'jupyterhub'"),
    ],
)
def test_group_and_role_mistakes_are_config_errors(security: dict[str, Any], where: str, words: str) -> None:
    (problem,) = _problems(security)
    assert problem.startswith(f"nebari-config.yaml: {where}: ")
    assert words in problem


# --- the render --------------------------------------------------------------------------------------


def _render(security: dict[str, Any], provider: str = "existing") -> dict[str, Any]:
    data: dict[str, Any] = {"project_name": "demo", "provider": provider, "domain": "demo.example.com"}
    data["security"] = {"keycloak": {"initial_root_password": "x" * 12}, **security}
    config = parse_config(yaml.safe_dump(data), FILE)
    rendered = render_stage(keycloak_configuration.STAGE, config, LOCK, "lockfiles/versions.yaml")
    doc: dict[str, Any] = json.loads(rendered.files["main.tf.json"])
    return doc


def test_roles_render_as_client_roles_with_component_and_scopes_attributes() -> None:
    roles = [
        {**ROLE, "groups": ["pycon"], "description": "Read pycon's shared directory"},
        {
            "name": "conda-pycon-write",
            "component": "conda-store",
            "scopes": ["write:conda-store!namespace=pycon", "read:conda-store!namespace=*"],
            "groups": ["pycon", "developer"],
        },
    ]
    doc = _render({"groups": ["pycon"], "roles": roles})
    kc_roles = doc["resource"]["keycloak_role"]
    shared = kc_roles["jupyterhub__pycon-read"]
    assert shared["client_id"] == "${keycloak_openid_client.jupyterhub.id}"
    assert shared["attributes"] == {"component": "shared-directory", "scopes": "read:shared!shared=pycon"}
    assert shared["description"] == "Read pycon's shared directory"
    conda = kc_roles["conda_store__conda-pycon-write"]
    assert conda["client_id"] == "${keycloak_openid_client.conda_store.id}"
    assert conda["attributes"] == {
        "component": "conda-store",
        "scopes": "write:conda-store!namespace=pycon,read:conda-store!namespace=*",
    }
    group_roles = doc["resource"]["keycloak_group_roles"]
    assert group_roles["group_pycon"]["role_ids"] == [
        "${keycloak_role.jupyterhub__pycon-read.id}",
        "${keycloak_role.conda_store__conda-pycon-write.id}",
    ]
    assert "${keycloak_role.conda_store__conda-pycon-write.id}" in group_roles["group_developer"]["role_ids"]
    assert group_roles["group_pycon"]["exhaustive"] is False
    assert doc["resource"]["keycloak_group"]["group_pycon"]["name"] == "pycon"


def test_builtin_roles_with_scopes_carry_them_and_every_component_has_a_client() -> None:
    kc_roles = _render({})["resource"]["keycloak_role"]
    sharing = kc_roles["jupyterhub__allow-app-sharing-role"]["attributes"]
    assert sharing == {"component": "jupyterhub", "scopes": "shares,read:users:name,read:groups:name"}
    assert "attributes" not in kc_roles["grafana__grafana_admin"]
    for component in get_args(Component):
        keycloak_configuration.client_of(component)
    for role in BUILTIN_ROLES:
        for scope in role.scopes:
            parse_scope(scope)


def test_a_role_without_groups_is_created_but_attached_nowhere() -> None:
    doc = _render({"roles": [ROLE]})
    assert "jupyterhub__pycon-read" in doc["resource"]["keycloak_role"]
    attached = [ids for g in doc["resource"]["keycloak_group_roles"].values() for ids in g["role_ids"]]
    assert "${keycloak_role.jupyterhub__pycon-read.id}" not in attached


def test_roles_in_the_sandbox_carry_the_same_attributes_on_their_twins() -> None:
    doc = _render({"roles": [ROLE]}, provider="sandbox")
    twin = doc["resource"]["terraform_data"]["keycloak_role__jupyterhub__pycon-read"]["input"]
    assert twin["attributes"] == {"component": "shared-directory", "scopes": "read:shared!shared=pycon"}
    assert twin["client_id"] == "sandbox-client-jupyterhub"
