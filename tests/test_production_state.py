"""Keycloak on PostgreSQL, conda-store on PostgreSQL + Redis + MinIO with a separate worker.

The renders are read the way the services read them: Keycloak's database settings as the
keycloakx chart turns its values into the container's environment (a stand-in for the
chart's statefulset template, written from keycloakx 2.5.1), conda-store's configuration
file executed against a stub `c` with the pod's environment. Addresses are followed to
the objects that answer them (headless Service -> StatefulSet port, Secret -> generated
password), so a renamed Service or Secret fails here and not in a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from checkhelpers import ROOT, check, edited, problem_lines, render_file
from scriptfakes import Config, conda_store_config

from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages import keycloak, services

LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
EXPLICIT = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"
NAMESPACE = "dev"


def _config(edit: Any = None) -> NebariConfig:
    data = yaml.safe_load(EXPLICIT.read_text())
    if edit is not None:
        edit(data)
    return NebariConfig.model_validate(data)


def _render(stage: Any, config: NebariConfig) -> dict[str, Any]:
    files = render_stage(stage.STAGE, config, LOCK, "x").files
    doc: dict[str, Any] = json.loads(files["main.tf.json"])
    return doc


def _in_namespace(text: str) -> str:
    return text.replace("${var.namespace}", NAMESPACE)


def _manifest(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    found = [
        body
        for key, body in doc["locals"].items()
        if key.endswith("_manifest")
        and isinstance(body, dict)
        and body.get("kind") == kind
        and body["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _secret_data(doc: dict[str, Any], name: str) -> dict[str, str]:
    secrets = doc["resource"]["kubernetes_secret"].values()
    (data,) = [s["data"] for s in secrets if s["metadata"][0]["name"] == name]
    return dict(data)


def _answers(doc: dict[str, Any], host: str, port: int) -> dict[str, Any]:
    """The StatefulSet behind `<service>.<namespace>.svc:port`, through its headless Service."""
    service_name, namespace, svc = _in_namespace(host).split(".")
    assert (namespace, svc) == (NAMESPACE, "svc")
    service = _manifest(doc, "Service", service_name)
    assert service["spec"]["clusterIP"] == "None"  # headless: the name resolves to the pod
    (svc_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    workload = _manifest(doc, "StatefulSet", service_name)
    assert workload["spec"]["serviceName"] == service_name
    assert service["spec"]["selector"] == workload["spec"]["template"]["metadata"]["labels"]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[svc_port["targetPort"]] == port
    return workload


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- Keycloak (05) ---------------------------------------------------------------------------


def keycloakx_database_env(values: dict[str, Any]) -> dict[str, Any]:
    """Stand-in for keycloakx 2.5.1 statefulset.yaml: the env it writes from `database`."""
    db = values.get("database") or {}
    env: dict[str, Any] = {}
    for key, name in (
        ("vendor", "KC_DB"),
        ("hostname", "KC_DB_URL_HOST"),
        ("port", "KC_DB_URL_PORT"),
        ("database", "KC_DB_URL_DATABASE"),
        ("username", "KC_DB_USERNAME"),
    ):
        if db.get(key):
            env[name] = str(db[key])
    if db.get("password") or db.get("existingSecret"):
        secret = db.get("existingSecret") or f"{keycloak.RELEASE}-keycloakx-database"
        env["KC_DB_PASSWORD"] = {
            "secretKeyRef": {"name": secret, "key": db.get("existingSecretKey") or "password"}
        }
    return env


def test_keycloak_reads_its_postgresql_and_the_password_from_a_generated_secret() -> None:
    doc = _render(keycloak, _config())
    env = keycloakx_database_env(doc["locals"]["keycloak_values"])
    assert env["KC_DB"] == "postgres"
    workload = _answers(doc, env["KC_DB_URL_HOST"], int(env["KC_DB_URL_PORT"]))
    server = _env(workload["spec"]["template"]["spec"]["containers"][0])
    assert (server["POSTGRES_DB"], server["POSTGRES_USER"]) == (
        env["KC_DB_URL_DATABASE"],
        env["KC_DB_USERNAME"],
    )
    # Keycloak and PostgreSQL read the same key of the same Secret, which holds a reference
    # to a generated password: no value in the render.
    assert env["KC_DB_PASSWORD"] == server["POSTGRES_PASSWORD"]
    ref = env["KC_DB_PASSWORD"]["secretKeyRef"]
    password = _secret_data(doc, ref["name"])[ref["key"]]
    assert password == "${random_password.keycloak_postgresql_password.result}"
    assert doc["resource"]["random_password"]["keycloak_postgresql_password"]["special"] is False
    # The chart's own (values-held) password and the dev-file volume are gone.
    values = doc["locals"]["keycloak_values"]
    assert "password" not in values["database"] and "extraVolumes" not in values
    assert "kubernetes_persistent_volume_claim" not in doc["resource"]
    # Keycloak starts after its database answers.
    depends = doc["resource"]["helm_release"]["keycloak"]["depends_on"]
    assert "kubectl_manifest.keycloak_postgresql" in depends


def test_keycloak_kept_on_dev_file_by_its_overrides_keeps_the_volume_and_no_postgresql() -> None:
    def keep(data: dict[str, Any]) -> None:
        data["security"]["keycloak"]["overrides"] = {"database": {"vendor": "dev-file"}}

    doc = _render(keycloak, _config(keep))
    values = doc["locals"]["keycloak_values"]
    assert keycloakx_database_env(values) == {"KC_DB": "dev-file"}
    assert keycloak.DATA_CLAIM in values["extraVolumes"]
    assert "kubectl_manifest" not in doc["resource"] and "random_password" not in doc["resource"]


def test_the_postgresql_statefulset_is_non_root_with_probes_and_a_claim_template() -> None:
    doc = _render(keycloak, _config())
    spec = _manifest(doc, "StatefulSet", keycloak.DATABASE)["spec"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["image"] == f"{LOCK.images['postgres'].image}:{LOCK.images['postgres'].tag}"
    assert "pg_isready" in " ".join(container["readinessProbe"]["exec"]["command"])
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]
    (claim,) = spec["volumeClaimTemplates"]
    assert container["volumeMounts"] == [
        {"name": claim["metadata"]["name"], "mountPath": "/var/lib/postgresql/data"}
    ]
    # initdb needs an empty directory; a fresh volume's root has lost+found.
    assert _env(container)["PGDATA"].startswith("/var/lib/postgresql/data/")


# --- conda-store (07) ------------------------------------------------------------------------


def _run_conda_store_config(doc: dict[str, Any], environ: dict[str, str]) -> Config:
    data = doc["resource"]["kubernetes_config_map"]["conda_store_config"]["data"]
    settings = json.loads(_in_namespace(json.dumps(doc["locals"]["conda_store_settings"])))
    c, _ = conda_store_config(data["conda_store_config.py"], settings, environ)
    return c


def _pod_environ(doc: dict[str, Any], deployment: str) -> dict[str, str]:
    """The container's environment with each Secret reference replaced by a distinct stand-in."""
    (container,) = _manifest(doc, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    out = {}
    for name, value in _env(container).items():
        ref = value["secretKeyRef"]
        out[name] = f"from-{ref['name']}-{ref['key']}"
    return out


@pytest.mark.parametrize("deployment", ["conda-store-server", "conda-store-worker"])
def test_conda_store_config_points_at_the_rendered_services_with_secrets_from_env(deployment: str) -> None:
    doc = _render(services, _config())
    c = _run_conda_store_config(doc, _pod_environ(doc, deployment))

    db = urlsplit(c.CondaStore.database_url)
    assert db.scheme == "postgresql+psycopg2"
    workload = _answers(doc, str(db.hostname), int(db.port or 0))
    server = _env(workload["spec"]["template"]["spec"]["containers"][0])
    assert (db.username, db.path.lstrip("/")) == (server["POSTGRES_USER"], server["POSTGRES_DB"])
    ref = server["POSTGRES_PASSWORD"]["secretKeyRef"]
    assert db.password == f"from-{ref['name']}-{ref['key']}"

    redis = urlsplit(c.CondaStore.redis_url)
    assert redis.scheme == "redis" and redis.path == "/0"
    broker = _answers(doc, str(redis.hostname), int(redis.port or 0))
    ref = _env(broker["spec"]["template"]["spec"]["containers"][0])["REDIS_PASSWORD"]["secretKeyRef"]
    assert redis.password == f"from-{ref['name']}-{ref['key']}"
    # Celery's broker and results follow redis_url in conda-store unless set: nothing sets them.
    assert not hasattr(c.CondaStore, "celery_broker_url") and not hasattr(
        c.CondaStore, "celery_results_backend"
    )

    assert c.CondaStore.storage_class == "conda_store_server.storage.S3Storage"
    host, port = c.S3Storage.internal_endpoint.split(":")
    release = doc["resource"]["helm_release"]["conda_store_minio"]
    assert host == f"{release['name']}.{NAMESPACE}.svc" and port == "9000"  # the chart's Service
    values = doc["locals"]["conda_store_minio_values"]
    assert [b["name"] for b in values["buckets"]] == [c.S3Storage.bucket_name]
    secret = values["existingSecret"]
    assert c.S3Storage.access_key == f"from-{secret}-rootUser"
    assert c.S3Storage.secret_key == f"from-{secret}-rootPassword"
    assert _secret_data(doc, secret)["rootPassword"].startswith("${random_password.")
    assert c.S3Storage.external_endpoint == "${var.domain}:9080"
    assert c.CondaStoreServer.standalone is False


def test_the_worker_builds_beside_the_server_on_the_shared_volume() -> None:
    doc = _render(services, _config())
    server = _manifest(doc, "Deployment", "conda-store-server")["spec"]["template"]["spec"]
    worker = _manifest(doc, "Deployment", "conda-store-worker")["spec"]["template"]["spec"]
    (s,), (w,) = server["containers"], worker["containers"]
    assert (
        s["image"] == w["image"]
        and w["args"][0] == "conda-store-worker"
        and s["args"][0] == "conda-store-server"
    )
    assert s["env"] == w["env"]  # one configuration file, which reads every variable

    def claims(pod: dict[str, Any]) -> dict[str, str]:
        return {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        }

    assert (
        claims(server)
        == claims(worker)
        == {
            "conda-store": doc["resource"]["kubernetes_persistent_volume_claim"]["conda_store_share"][
                "metadata"
            ][0]["name"]
        }
    )
    mounts = {m["mountPath"] for m in w["volumeMounts"]}
    assert {"/home/conda", "/opt/environments"} <= mounts
    # conda_store.worker.resources go to the worker, which builds.
    assert w["resources"]["limits"]["memory"] == _config().conda_store.worker.resources.mem_limit  # type: ignore[union-attr]


def test_object_storage_size_comes_from_the_config() -> None:
    def size(data: dict[str, Any]) -> None:
        data["conda_store"]["object_storage"] = "37Gi"

    doc = _render(services, _config(size))
    assert doc["locals"]["conda_store_minio_values"]["persistence"]["size"] == "37Gi"


def test_redis_requires_a_password_and_the_probe_authenticates() -> None:
    doc = _render(services, _config())
    (container,) = _manifest(doc, "StatefulSet", "conda-store-redis")["spec"]["template"]["spec"][
        "containers"
    ]
    env = _env(container)
    assert '--requirepass "$REDIS_PASSWORD"' in container["command"][-1]
    assert env["REDISCLI_AUTH"] == env["REDIS_PASSWORD"]
    assert "PONG" in container["readinessProbe"]["exec"]["command"][-1]


def test_no_generated_password_or_value_sits_in_the_config_files() -> None:
    doc = _render(services, _config())
    settings = json.dumps(doc["locals"]["conda_store_settings"])
    assert "random_password" not in settings and 'password": "' not in settings


# --- the checks see the new objects ----------------------------------------------------------


def test_a_broken_statefulset_is_caught_by_the_kubernetes_objects_check() -> None:
    def typo(data: dict[str, Any]) -> None:
        data["locals"]["conda_store_redis_manifest"]["spec"]["volumeClaimTemplatess"] = []

    stages = edited(render_file(ROOT / "nebari-config.yaml"), "07-kubernetes-services", typo)
    lines = problem_lines(check(stages, only=["kubernetes-objects"]))
    assert (
        len(lines) == 1
        and "StatefulSet/conda-store-redis" in lines[0]
        and "volumeClaimTemplatess" in lines[0]
    )


def test_images_are_the_official_library_ones_from_the_lockfile() -> None:
    for pin in ("postgres", "redis"):
        assert LOCK.images[pin].image == f"docker.io/library/{pin}"
    assert (
        Path(ROOT / "src" / "stagegraph" / "lockfiles" / "versions.yaml").read_text()
        == (ROOT / "lockfiles" / "versions.yaml").read_text()
    )


EXTERNAL_DB = {
    "vendor": "postgres",
    "hostname": "keycloak-db.example.internal",
    "existingSecret": "my-keycloak-db",
}


def test_keycloak_on_a_database_server_of_the_users_runs_none_of_ours() -> None:
    def external(data: dict[str, Any]) -> None:
        data["security"]["keycloak"]["overrides"] = {"database": dict(EXTERNAL_DB)}

    doc = _render(keycloak, _config(external))
    values = doc["locals"]["keycloak_values"]
    assert keycloakx_database_env(values)["KC_DB_URL_HOST"] == "keycloak-db.example.internal"
    assert values["database"] == EXTERNAL_DB  # the overrides' own, nothing of ours merged in
    assert "extraVolumes" not in values
    assert "kubectl_manifest" not in doc["resource"] and "random_password" not in doc["resource"]
    assert "kubernetes_persistent_volume_claim" not in doc["resource"]


def test_a_vendor_needing_a_server_without_its_hostname_is_refused() -> None:
    from stagegraph.errors import RenderError

    def mysql(data: dict[str, Any]) -> None:
        data["security"]["keycloak"]["overrides"] = {"database": {"vendor": "mysql"}}

    with pytest.raises(RenderError, match=r"security.keycloak.overrides.database.vendor: 'mysql' .*hostname"):
        _render(keycloak, _config(mysql))
