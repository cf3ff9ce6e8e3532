"""Dask Gateway access by role (issue 17 item 5): who may create clusters, see them, pick what.

The rendered gateway configuration runs in the real dask-gateway-server (the version the
pinned chart deploys), loaded the way the gateway pod loads it: `DaskGateway.initialize`
with the chart's config file, whose `extraConfig` entries are the rendered ones. Requests go
through the server's own aiohttp routes over loopback. Three stand-ins, named as fakes:

- the chart's config file around `extraConfig` (FAKE_CHART_CONFIG): the Helm chart archive
  is not available here, so its `templates/gateway/configmap.yaml` (dask-gateway 2024.1.0)
  is reproduced for the parts that matter (backend class, cluster defaults, auth type);
- a fake JupyterHub API answering the gateway's token check with the user model JupyterHub
  5 returns to a service, filtered by the scopes the rendered `hub.loadRoles` grant it
  (JUPYTERHUB_USER_FIELDS, from JupyterHub 5.2.1's `APIHandler.user_model`); users' roles
  are what the rendered hub scripts assign at login (test_roles_effect.hub_login) from the
  roles 06 puts in their token;
- a fake Kubernetes custom-objects API under the real KubeBackend: created DaskCluster
  objects are kept in memory and fed back through the backend's own sync, as its informer
  would.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp import ClientSession, web
from dask_gateway_server.app import DaskGateway
from dask_gateway_server.utils import Flag
from test_roles_effect import SANDBOX, _config, _doc, hub_login, token_roles

from stagegraph.configfile import parse_config
from stagegraph.errors import ConfigError
from stagegraph.lockfile import load_lockfile
from stagegraph.schema.config import NebariConfig
from stagegraph.stages import services

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
CHART = ROOT.parent / "shared" / "charts" / "dask-gateway" / LOCK.helm_charts["dask_gateway"].version
NAMESPACE = "dev"
SERVICE_TOKEN = "fake-dask-gateway-service-token"

#: The fields of a user model each scope lets a caller read (JupyterHub 5.2.1,
#: jupyterhub/apihandlers/base.py, `APIHandler.user_model`'s access map).
JUPYTERHUB_USER_FIELDS = {
    "read:users": {
        "kind",
        "name",
        "admin",
        "roles",
        "groups",
        "server",
        "pending",
        "created",
        "last_activity",
    },
    "read:users:name": {"kind", "name", "admin"},
    "read:users:groups": {"kind", "name", "groups"},
    "read:users:activity": {"kind", "name", "last_activity"},
    "read:roles:users": {"kind", "name", "roles", "admin"},
    "admin:auth_state": {"kind", "name", "auth_state"},
}
#: A token check always lets the service identify the token's owner (JupyterHub 5.2.1,
#: `TokenAPIHandler.get` adds `identify_scopes(owner)`).
IDENTIFY_SCOPES = {"read:users:name", "read:users:groups"}

#: Stand-in for the dask-gateway chart's gateway config file (chart 2024.1.0,
#: templates/gateway/configmap.yaml): what it sets before the `extraConfig` entries, which
#: it appends in key order, each after a `# From gateway.extraConfig.<key>` line.
FAKE_CHART_CONFIG = """\
import json

_PROPERTIES = json.loads({properties!r})


def get_property(key, default=None):
    value = _PROPERTIES
    for key2 in key.split("."):
        if not isinstance(value, dict) or key2 not in value:
            return default
        value = value[key2]
    return value


c.DaskGateway.address = ":8000"
c.DaskGateway.backend_class = "dask_gateway_server.backends.kubernetes.KubeBackend"
c.KubeBackend.gateway_instance = "dask-gateway"
image_name = get_property("gateway.backend.image.name")
if image_name:
    c.KubeClusterConfig.image = "%s:%s" % (image_name, get_property("gateway.backend.image.tag"))
for field, prop_name in [
    ("scheduler_extra_container_config", "scheduler.extraContainerConfig"),
    ("scheduler_extra_pod_config", "scheduler.extraPodConfig"),
    ("worker_extra_container_config", "worker.extraContainerConfig"),
    ("worker_extra_pod_config", "worker.extraPodConfig"),
    ("environment", "environment"),
    ("namespace", "namespace"),
]:
    value = get_property("gateway.backend." + prop_name)
    if value is not None:
        setattr(c.KubeClusterConfig, field, value)
assert get_property("gateway.auth.type") == "jupyterhub"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
c.DaskGateway.JupyterHubAuthenticator.jupyterhub_api_url = get_property("gateway.auth.jupyterhub.apiUrl")
"""


def _resolve(value: Any, local: dict[str, Any]) -> Any:
    """Terraform's part: `${local.x}` values, `${var.namespace}`, and `$${` escapes."""
    if isinstance(value, str):
        if value.startswith("${local.") and value.endswith("}") and value.count("${") == 1:
            return _resolve(local[value[len("${local.") : -1]], local)
        return value.replace("${var.namespace}", NAMESPACE).replace("$${", "${")
    if isinstance(value, dict):
        return {k: _resolve(v, local) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, local) for v in value]
    return value


def gateway_config_file(doc: dict[str, Any], hub_url: str) -> str:
    """The gateway's config file as the chart writes it from the rendered values."""
    local = doc["locals"]
    values = local["dask_gateway_values"]
    assert values["gateway"]["auth"]["jupyterhub"]["apiUrl"] == "http://hub.${var.namespace}:8081/hub/api"
    extra = values["gateway"]["extraConfig"]
    properties = _resolve({k: v for k, v in values.items() if k == "gateway"}, local)
    properties["gateway"].pop("extraConfig")
    properties["gateway"]["auth"]["jupyterhub"]["apiUrl"] = hub_url
    settings = json.dumps(json.dumps(_resolve(local["dask_gateway_settings"], local)))
    text = FAKE_CHART_CONFIG.format(properties=json.dumps(properties))
    for key in sorted(extra):
        script = extra[key].replace("${jsonencode(jsonencode(local.dask_gateway_settings))}", settings)
        assert "${" not in script.replace("$${", ""), f"unresolved Terraform in extraConfig.{key}"
        text += f"\n# From gateway.extraConfig.{key}\n" + script.replace("$${", "${")
    return text


class FakeHub:
    """The JupyterHub API's token check, as the gateway's service token sees it."""

    def __init__(self, hub_values: dict[str, Any]) -> None:
        assert "dask-gateway" in hub_values["services"]
        self.scopes = set(IDENTIFY_SCOPES)
        for role in (hub_values.get("loadRoles") or {}).values():
            if "dask-gateway" in role.get("services", []):
                self.scopes |= set(role["scopes"])
        self.users: dict[str, dict[str, Any]] = {}

    def add(self, token: str, model: dict[str, Any]) -> None:
        self.users[token] = {"kind": "user", **model}

    async def token_check(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"token {SERVICE_TOKEN}":
            return web.json_response({"status": 403}, status=403)
        model = self.users.get(request.match_info["token"])
        if model is None:
            return web.json_response({"status": 404}, status=404)
        fields = set().union(*(JUPYTERHUB_USER_FIELDS.get(s, set()) for s in self.scopes))
        return web.json_response({k: v for k, v in model.items() if k in fields})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/hub/api/authorizations/token/{token}", self.token_check)
        return app


class FakeCustomObjects:
    """The slice of kubernetes_asyncio's CustomObjectsApi the backend calls; objects in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    async def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        assert (group, plural) == ("gateway.dask.org", "daskclusters")
        body = json.loads(json.dumps(body))
        body["metadata"].update(namespace=namespace, creationTimestamp="2026-01-01T00:00:00Z")
        self.objects[f"{namespace}.{body['metadata']['name']}"] = body
        return body

    async def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: list[dict[str, Any]]
    ) -> dict[str, Any]:
        # The backend stops a cluster with a JSON patch setting spec.active to false.
        assert body == [{"op": "add", "path": "/spec/active", "value": False}]
        obj = self.objects[f"{namespace}.{name}"]
        obj["spec"]["active"] = False
        return obj

    def get(self, key: str) -> dict[str, Any] | None:  # the informer's cache lookup
        return self.objects.get(key)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


class Gateway:
    """A running gateway: `call(token, method, path, json)` -> (status, body)."""

    def __init__(self, url: str, backend: Any, objects: FakeCustomObjects) -> None:
        self.url = url
        self.backend = backend
        self.objects = objects

    async def call(self, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with ClientSession() as session:
            headers = {"Authorization": f"jupyterhub {token}"}
            async with session.request(method, self.url + path, json=body, headers=headers) as resp:
                data: Any = await resp.json() if resp.content_type == "application/json" else None
                if method == "POST" and resp.status == 201:
                    # The informer sees the new DaskCluster; the backend syncs it into its cache.
                    await self.backend.sync_cluster(data["name"])
                return resp.status, data


@asynccontextmanager
async def running_gateway(
    doc: dict[str, Any], tmp_path: Path, users: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    hub = FakeHub(doc["locals"]["jupyterhub_values"]["hub"])
    for token, model in users.items():
        hub.add(token, model)
    hub_runner, hub_url = await _serve(hub.app())
    config_file = tmp_path / "dask_gateway_config.py"
    config_file.write_text(gateway_config_file(doc, hub_url + "/hub/api"))
    # The chart hands the service token to the pod as JUPYTERHUB_API_TOKEN.
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVICE_TOKEN)
    app = DaskGateway()
    app.initialize(["--config", str(config_file)])
    backend = app.backend
    objects = FakeCustomObjects()
    # What KubeBackend.setup would build against a real API server.
    backend.custom_client = objects
    backend.informer = objects
    backend.clusters = {}
    backend.username_to_clusters = defaultdict(dict)
    backend.cluster_waiters = defaultdict(Flag)
    await app.authenticator.setup(app.app)
    runner, url = await _serve(app.app)
    try:
        yield Gateway(url, backend, objects)
    finally:
        await runner.cleanup()
        await app.authenticator.cleanup()
        await hub_runner.cleanup()
        DaskGateway.clear_instance()


def hub_user(config: NebariConfig, doc: dict[str, Any], name: str, groups: list[str]) -> dict[str, Any]:
    """The JupyterHub user model after `name` (in Keycloak `groups`) logged in to the hub."""
    login = hub_login(doc["locals"]["jupyterhub_values"], name, groups, token_roles(config, groups))
    roles = [r["name"] for r in login["roles"]]
    return {"name": name, "admin": "admin" in roles, "roles": roles, "groups": groups, "auth_state": {"x": 1}}


def _restricted_profile(data: dict[str, Any]) -> None:
    data.setdefault("profiles", {})["dask_worker"] = {
        "Small Worker": {
            "worker_cores_limit": 2,
            "worker_cores": 1,
            "worker_memory_limit": "8G",
            "worker_memory": "4G",
        },
        "GPU Worker": {
            "worker_cores_limit": 8,
            "worker_cores": 6,
            "worker_memory_limit": "64G",
            "worker_memory": "48G",
            "groups": ["admin"],
            "users": ["ana"],
            "worker_extra_pod_config": {"nodeSelector": {"nebari.dev/gpu": "true"}},
        },
    }


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _profiles(body: dict[str, Any]) -> list[str] | None:
    for field in body["cluster_options"]:
        if field["field"] == "profile":
            options: list[str] = field["spec"]["options"]
            return options
    return None


def test_developer_admin_and_a_user_without_a_dask_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(_restricted_profile)
    doc = _doc(services.STAGE, config)
    users = {
        "t-dev": hub_user(config, doc, "dev1", ["developer"]),
        "t-boss": hub_user(config, doc, "boss", ["admin"]),
        "t-ana": hub_user(config, doc, "ana", ["analyst"]),
    }
    # The hub users as the gateway will see them (roles from 06's token, applied by the hub).
    assert "dask_gateway_developer" in users["t-dev"]["roles"]
    assert "dask_gateway_admin" in users["t-boss"]["roles"]
    assert not any(r.startswith("dask_gateway") for r in users["t-ana"]["roles"])

    async def scenario() -> None:
        async with running_gateway(doc, tmp_path, users, monkeypatch) as gw:
            # Without a dask role: refused, before any option or cluster, with the reason.
            status, body = await gw.call("t-ana", "GET", "/api/v1/options")
            assert status == 403 and "holds no Dask Gateway role" in body["error"]
            status, body = await gw.call("t-ana", "POST", "/api/v1/clusters/", {"cluster_options": {}})
            assert status == 403 and not gw.objects.objects
            assert (await gw.call("t-nobody", "GET", "/api/v1/clusters/"))[0] == 401

            # Options per user: the GPU profile is for group admin (and user ana) only.
            status, body = await gw.call("t-dev", "GET", "/api/v1/options")
            assert status == 200 and _profiles(body) == ["Small Worker"]
            status, body = await gw.call("t-boss", "GET", "/api/v1/options")
            assert _profiles(body) == ["Small Worker", "GPU Worker"]
            gpu = {"cluster_options": {"profile": "GPU Worker"}}
            status, body = await gw.call("t-dev", "POST", "/api/v1/clusters/", gpu)
            assert status == 422 and "'GPU Worker' is not a valid option" in body["error"]

            # A developer creates; an admin creates with the GPU profile.
            status, dev_cluster = await gw.call("t-dev", "POST", "/api/v1/clusters/", {"cluster_options": {}})
            assert status == 201
            status, boss_cluster = await gw.call("t-boss", "POST", "/api/v1/clusters/", gpu)
            assert status == 201
            spec = gw.objects.objects[boss_cluster["name"]]["spec"]
            assert spec["username"] == "boss" and spec["config"]["worker_memory_limit"] == 64 * 2**30
            # The profile's node selector replaces the chart's worker one; the scheduler keeps its own.
            assert spec["config"]["worker_extra_pod_config"]["nodeSelector"] == {"nebari.dev/gpu": "true"}
            assert "users" not in spec["config"] and "groups" not in spec["config"]

            # A developer sees only their own clusters; an admin sees everyone's.
            status, listed = await gw.call("t-dev", "GET", "/api/v1/clusters/")
            assert status == 200 and set(listed) == {dev_cluster["name"]}
            status, listed = await gw.call("t-boss", "GET", "/api/v1/clusters/")
            assert set(listed) == {dev_cluster["name"], boss_cluster["name"]}
            assert (await gw.call("t-dev", "GET", f"/api/v1/clusters/{boss_cluster['name']}"))[0] == 403
            assert (await gw.call("t-boss", "GET", f"/api/v1/clusters/{dev_cluster['name']}"))[0] == 200
            # Stopping: a developer not another's cluster; an admin anyone's.
            assert (await gw.call("t-dev", "DELETE", f"/api/v1/clusters/{boss_cluster['name']}"))[0] == 403
            assert "active" not in gw.objects.objects[boss_cluster["name"]]["spec"]
            assert (await gw.call("t-boss", "DELETE", f"/api/v1/clusters/{dev_cluster['name']}"))[0] == 204
            assert gw.objects.objects[dev_cluster["name"]]["spec"]["active"] is False

    _run(scenario())


def test_the_hub_service_role_is_what_lets_the_gateway_see_roles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the rendered `hub.loadRoles` scope the token check carries no roles: nobody gets in."""
    config = _config()
    doc = _doc(services.STAGE, config)
    assert doc["locals"]["jupyterhub_values"]["hub"]["loadRoles"]["dask-gateway"] == {
        "description": "Dask Gateway reads the roles of the users whose tokens it checks",
        "scopes": ["read:roles:users"],
        "services": ["dask-gateway"],
    }
    users = {"t-dev": hub_user(config, doc, "dev1", ["developer"])}
    del doc["locals"]["jupyterhub_values"]["hub"]["loadRoles"]["dask-gateway"]

    async def scenario() -> None:
        async with running_gateway(doc, tmp_path, users, monkeypatch) as gw:
            assert (await gw.call("t-dev", "GET", "/api/v1/options"))[0] == 403

    _run(scenario())


def test_conda_environments_only_from_the_users_namespaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config()
    doc = _doc(services.STAGE, config)
    users = {"t-dev": hub_user(config, doc, "dev1", ["developer"])}

    async def scenario() -> None:
        async with running_gateway(doc, tmp_path, users, monkeypatch) as gw:
            ask = {
                "cluster_options": {"conda_environment": "developer/pandas", "environment_vars": {"A": "1"}}
            }
            status, made = await gw.call("t-dev", "POST", "/api/v1/clusters/", ask)
            assert status == 201
            cfg = gw.objects.objects[made["name"]]["spec"]["config"]
            assert cfg["environment"] == {"A": "1", "CONDA_ENVIRONMENT": "/home/conda/developer/envs/pandas"}
            assert cfg["worker_cmd"] == ["/opt/conda-run-worker"]
            mount = {
                "name": "conda-store",
                "mountPath": "/home/conda/developer",
                "subPath": "developer",
                "readOnly": True,
            }
            claim = {"claimName": f"conda-store-{NAMESPACE}-share"}
            for part in ("scheduler", "worker"):
                assert cfg[f"{part}_extra_container_config"]["volumeMounts"] == [mount]
                assert cfg[f"{part}_extra_pod_config"]["volumes"] == [
                    {"name": "conda-store", "persistentVolumeClaim": claim}
                ]
                # The chart's node selector stays beside the volume.
                assert cfg[f"{part}_extra_pod_config"]["nodeSelector"]
            for other in ("analyst/pandas", "developer/a/b", "nonamespace"):
                status, body = await gw.call(
                    "t-dev", "POST", "/api/v1/clusters/", {"cluster_options": {"conda_environment": other}}
                )
                assert status == 422 and "a namespace of yours" in body["error"], other
            # What the user may pick from: own, default, global and group namespaces.
            assert "dev1, developer, global, nebari-git" in body["error"]

    _run(scenario())


def test_the_cluster_object_passes_the_charts_crd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crd = yaml.safe_load((CHART / "crds" / "daskclusters.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    config = _config(_restricted_profile)
    doc = _doc(services.STAGE, config)
    users = {"t-boss": hub_user(config, doc, "boss", ["admin"])}

    async def scenario() -> None:
        async with running_gateway(doc, tmp_path, users, monkeypatch) as gw:
            ask = {"cluster_options": {"profile": "GPU Worker", "conda_environment": "admin/x"}}
            status, made = await gw.call("t-boss", "POST", "/api/v1/clusters/", ask)
            assert status == 201
            jsonschema.validate(gw.objects.objects[made["name"]], schema)

    _run(scenario())


def _pycon_dask(scopes: list[str]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data.setdefault("security", {})["groups"] = ["pycon"]
        data["security"]["roles"] = [
            {"name": "pycon-dask", "component": "dask-gateway", "scopes": scopes, "groups": ["pycon"]}
        ]

    return edit


def test_a_dask_gateway_role_of_the_config_grants_what_its_scope_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(_pycon_dask(["create:dask-gateway"]))
    doc = _doc(services.STAGE, config)
    users = {
        "t-ana": hub_user(config, doc, "ana", ["analyst", "pycon"]),
        "t-dev": hub_user(config, doc, "dev1", ["developer"]),
    }
    assert "pycon-dask" in users["t-ana"]["roles"]

    async def scenario() -> None:
        async with running_gateway(doc, tmp_path, users, monkeypatch) as gw:
            assert (await gw.call("t-dev", "POST", "/api/v1/clusters/", {"cluster_options": {}}))[0] == 201
            assert (await gw.call("t-ana", "POST", "/api/v1/clusters/", {"cluster_options": {}}))[0] == 201
            status, listed = await gw.call("t-ana", "GET", "/api/v1/clusters/")
            assert status == 200 and len(listed) == 1  # create, not admin

    _run(scenario())


def _refused(edit: Callable[[dict[str, Any]], None]) -> str:
    """The one-line problem `validate` reports for the sandbox config with `edit` applied."""
    data = yaml.safe_load(SANDBOX.read_text())
    edit(data)
    with pytest.raises(ConfigError) as err:
        parse_config(yaml.safe_dump(data), "nebari-config.yaml")
    (problem,) = err.value.problems
    return problem


def test_a_dask_gateway_scope_the_gateway_cannot_apply_is_refused_at_validate() -> None:
    message = _refused(_pycon_dask(["read:shared!shared=pycon"]))
    assert message.startswith("nebari-config.yaml: security.roles.0.scopes.0:")
    assert "create:dask-gateway" in message


def test_the_conda_path_is_where_conda_store_builds() -> None:
    """The gateway's environment path follows conda-store's store and environment directories."""
    doc = _doc(services.STAGE, _config())
    settings = doc["locals"]["dask_gateway_settings"]["conda"]
    script = next(
        body["input"]["data"]["conda_store_config.py"]
        for key, body in doc["resource"]["terraform_data"].items()
        if key == "kubernetes_config_map__conda_store_config"
    )
    namespace: dict[str, Any] = {}
    for line in script.splitlines():
        if line.startswith(("c.CondaStore.store_directory", "c.CondaStore.environment_directory")):
            key, _, value = line.partition(" = ")
            namespace[key] = eval(value)
    built = namespace["c.CondaStore.environment_directory"].format(
        store_directory=namespace["c.CondaStore.store_directory"].rstrip("/"), namespace="ns", name="env"
    )
    assert built == settings["environment_path"].format(namespace="ns", name="env")
    assert built.startswith(settings["mount"] + "/ns/")


def test_the_tests_run_the_gateway_the_chart_deploys() -> None:
    """The python pin of dask-gateway-server is the gateway image of the pinned chart."""
    import dask_gateway_server

    chart = yaml.safe_load((CHART / "values.yaml").read_text())
    # The render keeps the chart's gateway image: the server the tests run is the one deployed.
    assert "image" not in _doc(services.STAGE, _config())["locals"]["dask_gateway_values"]["gateway"]
    assert chart["gateway"]["image"]["name"] == "ghcr.io/dask/dask-gateway-server"
    assert dask_gateway_server.__version__ == chart["gateway"]["image"]["tag"]


def test_a_role_name_jupyterhub_would_refuse_is_refused_at_validate() -> None:
    def edit(data: dict[str, Any]) -> None:
        _pycon_dask(["create:dask-gateway"])(data)
        data["security"]["roles"][0]["name"] = "PyCon-Dask"

    message = _refused(edit)
    assert message.startswith("nebari-config.yaml: security.roles.0.name:")
    assert "'PyCon-Dask'" in message


@pytest.mark.parametrize("name", ["user", "dask-gateway"])
def test_a_role_may_not_take_the_name_of_a_jupyterhub_role(name: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        _pycon_dask(["create:dask-gateway"])(data)
        data["security"]["roles"][0]["name"] = name

    message = _refused(edit)
    assert message.startswith("nebari-config.yaml: security.roles.0.name:")
    assert "JupyterHub already has" in message
