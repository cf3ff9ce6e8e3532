"""The backup and restore pods' scripts, run here as the pods would run them, against fakes.

Each rendered container is run with `sh` (or `python`) from a folder standing for its
mounts: `/backup` (the backup volume), `/scripts` (the ConfigMap) and `/data/<volume>`
become folders under tmp_path, and the container's rendered `env` is built the way the
kubelet builds it (`$(RUN)` expanded, `fieldRef` from the Job's label, `secretKeyRef` from
a stand-in Secret store). The database and S3 clients are fakes by name, small
executables first on PATH:
- fake `pg_dump` / `pg_restore`: refuse to run without libpq's PGHOST, PGUSER,
  PGDATABASE and PGPASSWORD, write or read a dump file, log what they did;
- fake `aws`: `aws s3 sync` between a folder and `s3://bucket`, where the bucket is a
  folder under $FAKE_S3; it refuses to run without path-style addressing in
  $AWS_CONFIG_FILE and without keys.
tar, find, sh and python are the real ones. Not run here: the real PostgreSQL clients and
MinIO (no container runtime on this machine), and the Keycloak admin API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from test_backup import platform

from stagegraph.backup import render_backup
from stagegraph.backup_restore import render_restore
from stagegraph.schema.tool import Backup

RUN = "nebari-backup-manual-20261206"
SECRETS = {
    ("keycloak-postgresql", "password"): "kc-db-secret-1",
    ("conda-store-postgresql", "password"): "cs-db-secret-2",
    ("conda-store-minio-credentials", "rootUser"): "conda-store",
    ("conda-store-minio-credentials", "rootPassword"): "minio-secret-3",
    ("keycloak-admin-credentials", "username"): "root",
    ("keycloak-admin-credentials", "password"): "kc-admin-secret-4",
}

FAKE_PG = r'''#!{python}
"""Fake {tool}: checks libpq's environment, then writes (pg_dump) or reads (pg_restore) a dump."""
import json, os, sys
env = {{k: os.environ.get(k) for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD")}}
missing = [k for k, v in env.items() if not v]
if missing:
    sys.exit("{tool}: missing " + ", ".join(missing))
args = sys.argv[1:]
if "{tool}" == "pg_dump":
    assert "--format=custom" in args, args
    out = next(a.split("=", 1)[1] for a in args if a.startswith("--file="))
    with open(out, "w") as f:
        json.dump({{"database": env["PGDATABASE"], "user": env["PGUSER"], "host": env["PGHOST"]}}, f)
else:
    dump = args[-1]
    with open(dump) as f:
        data = json.load(f)
    assert data["database"] == env["PGDATABASE"], (data, env)
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"tool": "{tool}", "args": args, "env": env}}) + "\n")
'''

FAKE_AWS = r'''#!{python}
"""Fake aws: `aws s3 sync --endpoint-url URL --only-show-errors SRC DST`, buckets as folders."""
import json, os, shutil, sys
args = sys.argv[1:]
assert args[:2] == ["s3", "sync"], args
for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
    if not os.environ.get(key):
        sys.exit("aws: missing " + key)
if "addressing_style = path" not in open(os.environ["AWS_CONFIG_FILE"]).read():
    sys.exit("aws: virtual-hosted addressing would not resolve <bucket>.<service>")
endpoint = args[args.index("--endpoint-url") + 1]
src, dst = args[-2], args[-1]
def local(p):
    return os.path.join(os.environ["FAKE_S3"], p[len("s3://"):]) if p.startswith("s3://") else p
if not os.path.isdir(local(src)):
    sys.exit("aws: NoSuchBucket " + src)
shutil.copytree(local(src), local(dst), dirs_exist_ok=True)
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"tool": "aws", "args": args, "endpoint": endpoint,
                          "key": os.environ["AWS_ACCESS_KEY_ID"]}}) + "\n")
'''


class Pod:
    """One pod's mounts as folders, and the fakes on PATH."""

    def __init__(self, root: Path, configmap: dict[str, Any]) -> None:
        self.root = root
        self.backup = root / "backup"
        self.scripts = root / "scripts"
        self.data = root / "data"
        self.s3 = root / "s3"
        self.log = root / "fake.log"
        self.bin = root / "bin"
        for folder in (self.backup, self.scripts, self.data, self.s3, self.bin):
            folder.mkdir(parents=True, exist_ok=True)
        for name, text in configmap["data"].items():
            (self.scripts / name).write_text(self.local(text))
        fakes = {
            "pg_dump": FAKE_PG.format(python=sys.executable, tool="pg_dump"),
            "pg_restore": FAKE_PG.format(python=sys.executable, tool="pg_restore"),
            "aws": FAKE_AWS.format(python=sys.executable),
        }
        for name, text in fakes.items():
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    def local(self, text: str) -> str:
        """A path of the pod as the folder standing for its mount here."""
        for mount, folder in (("/backup", self.backup), ("/scripts", self.scripts), ("/data", self.data)):
            text = text.replace(mount, str(folder))
        return text

    def env(self, container: dict[str, Any], job: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(self.log),
            "FAKE_S3": str(self.s3),
        }
        for entry in container["env"]:
            source = entry.get("valueFrom")
            if source is None:
                value = entry["value"]
                for name, known in env.items():  # the kubelet expands $(VAR) of earlier entries
                    value = value.replace(f"$({name})", known)
                env[entry["name"]] = self.local(value)
            elif "fieldRef" in source:
                assert source["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
                env[entry["name"]] = job
            else:
                ref = source["secretKeyRef"]
                env[entry["name"]] = SECRETS[(ref["name"], ref["key"])]
        return env

    def run(self, container: dict[str, Any], job: str = RUN) -> subprocess.CompletedProcess[str]:
        interpreter, script = container["command"]
        argv = [sys.executable if interpreter == "python" else "sh", self.local(script)]
        return subprocess.run(
            argv, env=self.env(container, job), capture_output=True, text=True, timeout=60, check=False
        )

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def objects(kind: str, rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [o for o in rendered if o["kind"] == kind]
    return found


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    spec = spec["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else spec
    template: dict[str, Any] = spec["template"]["spec"]
    return template


def seed_platform(pod: Pod) -> None:
    """What the cluster holds: a bucket with a build's artifacts, files on the two volumes."""
    (pod.s3 / "conda-store" / "lockfile").mkdir(parents=True)
    (pod.s3 / "conda-store" / "lockfile" / "42.yaml").write_text("lock: 42\n")
    (pod.data / "conda-store" / "envs").mkdir(parents=True)
    (pod.data / "conda-store" / "envs" / "env.yaml").write_text("name: analysis\n")
    (pod.data / "shared-storage" / "alice").mkdir(parents=True)
    (pod.data / "shared-storage" / "alice" / "notes.txt").write_text("hello\n")


@pytest.fixture
def backed_up(tmp_path: Path) -> Pod:
    """A backup run of every component but the Keycloak export (no admin API here)."""
    rendered = render_backup(Backup(keep_days=7), platform("dev"))
    pod = Pod(tmp_path, objects("ConfigMap", rendered))
    seed_platform(pod)
    # Runs from before: one past keep_days (7), one within.
    for name, age_days in (("nebari-backup-old", 9), ("nebari-backup-recent", 5)):
        (pod.backup / name).mkdir()
        then = time.time() - age_days * 86400
        os.utime(pod.backup / name, (then, then))
    spec = pod_spec(objects("CronJob", rendered))
    for container in [*spec["initContainers"], *spec["containers"]]:
        if container["name"] == "keycloak":
            continue
        done = pod.run(container)
        assert done.returncode == 0, (container["name"], done.stderr)
    return pod


def test_a_backup_run_dumps_both_databases_copies_the_bucket_and_archives_the_volumes(backed_up: Pod) -> None:
    run = backed_up.backup / RUN
    # Retention covers the dumps too: whole runs older than keep_days go.
    assert sorted(p.name for p in backed_up.backup.iterdir()) == ["LATEST", RUN, "nebari-backup-recent"]
    assert sorted(p.name for p in run.iterdir()) == [
        "conda-store-artifacts",
        "conda-store-postgresql.dump",
        "conda-store.tar.gz",
        "keycloak-postgresql.dump",
        "shared-storage.tar.gz",
    ]
    assert json.loads((run / "keycloak-postgresql.dump").read_text()) == {
        "database": "keycloak",
        "user": "keycloak",
        "host": "keycloak-postgresql.dev.svc",
    }
    assert json.loads((run / "conda-store-postgresql.dump").read_text())["database"] == "conda-store"
    assert (run / "conda-store-artifacts" / "lockfile" / "42.yaml").read_text() == "lock: 42\n"
    with tarfile.open(run / "shared-storage.tar.gz") as tar:
        assert "./alice/notes.txt" in tar.getnames()
    assert (backed_up.backup / "LATEST").read_text().strip() == RUN
    calls = backed_up.calls()
    dumps = [(c["env"]["PGDATABASE"], c["env"]["PGPASSWORD"]) for c in calls if c["tool"] == "pg_dump"]
    # Each dump as its own database's user, with the password from that database's Secret.
    assert dumps == [("keycloak", "kc-db-secret-1"), ("conda-store", "cs-db-secret-2")]
    (sync,) = [c for c in calls if c["tool"] == "aws"]
    assert sync["endpoint"] == "http://conda-store-minio.dev.svc:9000" and sync["key"] == "conda-store"
    assert not list(run.rglob("*.partial"))


def test_a_restore_puts_back_databases_bucket_and_volumes_from_the_named_backup(backed_up: Pod) -> None:
    # What changed since: the bucket lost its artifacts, a user's file was overwritten.
    import shutil

    shutil.rmtree(backed_up.s3 / "conda-store")
    (backed_up.s3 / "conda-store").mkdir()
    (backed_up.data / "shared-storage" / "alice" / "notes.txt").write_text("overwritten\n")
    backed_up.log.unlink()
    rendered = render_restore(Backup(), platform("dev"), "latest")
    restore = Pod(backed_up.root, objects("ConfigMap", rendered))
    spec = pod_spec(objects("Job", rendered))
    names = [c["name"] for c in [*spec["initContainers"], *spec["containers"]]]
    assert names == [
        "conda-store-database",
        "conda-store-artifacts",
        "conda-store",
        "keycloak-database",
        "shared-storage",
        "keycloak-users",
    ]
    for container in [*spec["initContainers"], *spec["containers"]]:
        done = restore.run(container)
        assert done.returncode == 0, (container["name"], done.stderr)
    restores = [c for c in restore.calls() if c["tool"] == "pg_restore"]
    assert [c["env"]["PGDATABASE"] for c in restores] == ["conda-store", "keycloak"]
    assert restores[1]["args"] == [
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        "--dbname=keycloak",
        str(backed_up.backup / RUN / "keycloak-postgresql.dump"),
    ]
    assert (backed_up.s3 / "conda-store" / "lockfile" / "42.yaml").read_text() == "lock: 42\n"
    assert (backed_up.data / "shared-storage" / "alice" / "notes.txt").read_text() == "hello\n"
    # With the dump restored, the users are in the database: nothing is imported.
    last = restore.run(spec["containers"][0])
    assert "restored with the database dump; nothing to import" in last.stdout


def test_a_restore_of_a_backup_that_does_not_exist_fails_naming_it(backed_up: Pod) -> None:
    rendered = render_restore(Backup(), platform("dev"), "nebari-backup-29990101")
    restore = Pod(backed_up.root, objects("ConfigMap", rendered))
    first = pod_spec(objects("Job", rendered))["initContainers"][0]
    done = restore.run(first)
    assert done.returncode != 0
    assert "no backup nebari-backup-29990101 in" in done.stderr


def test_a_backup_taken_on_dev_file_restores_keycloak_through_the_import(tmp_path: Path) -> None:
    """Taken on dev-file (no Keycloak dump), restored after the switch to PostgreSQL."""
    taken = render_backup(Backup(components=["keycloak"]), platform("dev", keycloak_on_postgres=False))
    names = [c["name"] for c in pod_spec(objects("CronJob", taken))["initContainers"]]
    assert names == ["keycloak"]  # the admin API export only: dev-file's H2 volume is Keycloak's own
    (tmp_path / "backup" / RUN / "keycloak").mkdir(parents=True)
    rendered = render_restore(Backup(components=["keycloak"]), platform("dev"), RUN)
    pod = Pod(tmp_path, objects("ConfigMap", rendered))
    (database,) = pod_spec(objects("Job", rendered))["initContainers"]
    done = pod.run(database)
    # No dump in that backup: the database step says so and lets the import do the work.
    assert done.returncode == 0 and "has no keycloak-postgresql.dump" in done.stderr
    assert pod.calls() == []


class FakeKeycloak:
    """A fake of the Keycloak admin API calls the export and import scripts make, on loopback.

    Token by password grant (checks the admin's credentials), the realm's partial export,
    users paged by `first`/`max`, a user's groups and identity links, and partialImport
    (records the body, answers added/skipped as Keycloak does).
    """

    def __init__(self, users: list[dict[str, Any]]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlparse

        self.users = users
        self.imported: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def authorized(self) -> bool:
                return self.headers.get("Authorization") == "Bearer fake-token"

            def do_POST(self) -> None:
                url = urlparse(self.path)
                if url.path == "/auth/realms/master/protocol/openid-connect/token":
                    form = parse_qs(self.body().decode())
                    ok = form["username"] == ["root"] and form["password"] == ["kc-admin-secret-4"]
                    return self.answer({"access_token": "fake-token"} if ok else {}, 200 if ok else 401)
                if not self.authorized():
                    return self.answer({"error": "unauthorized"}, 401)
                if url.path == "/auth/admin/realms/nebari/partial-export":
                    return self.answer({"realm": "nebari", "clients": [{"clientId": "jupyterhub"}]})
                if url.path == "/auth/admin/realms/nebari/partialImport":
                    request = json.loads(self.body())
                    fake.imported.append(request)
                    return self.answer({"added": len(request["users"]), "skipped": 0, "overwritten": 0})
                return self.answer({"error": "not found"}, 404)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if not self.authorized():
                    return self.answer({"error": "unauthorized"}, 401)
                parts = url.path.split("/")
                if url.path == "/auth/admin/realms/nebari/users":
                    query = parse_qs(url.query)
                    first, size = int(query["first"][0]), int(query["max"][0])
                    page = fake.users[first : first + size]
                    return self.answer([{k: v for k, v in u.items() if not k.startswith("_")} for u in page])
                user = next((u for u in fake.users if u["id"] == parts[-2]), None)
                if user is not None and parts[-1] == "groups":
                    return self.answer([{"path": p} for p in user["_groups"]])
                if user is not None and parts[-1] == "federated-identity":
                    return self.answer(user["_links"])
                return self.answer({"error": "not found"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/auth"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def keycloak_container(container: dict[str, Any], url: str) -> dict[str, Any]:
    env = [
        e if e["name"] != "KEYCLOAK_URL" else {"name": "KEYCLOAK_URL", "value": url} for e in container["env"]
    ]
    return {**container, "env": env}


def test_users_exported_on_dev_file_are_re_created_after_the_switch_and_must_set_a_password(
    tmp_path: Path,
) -> None:
    users: list[dict[str, Any]] = [
        {"id": f"u{i}", "username": f"user{i}", "requiredActions": [], "_groups": ["/analyst"], "_links": []}
        for i in range(205)  # more than one page of 200
    ]
    users[0]["_links"] = [{"identityProvider": "github", "userId": "77", "userName": "user0"}]
    keycloak = FakeKeycloak(users)
    try:
        # The backup, taken while Keycloak still ran on dev-file: the admin API export only.
        taken = render_backup(Backup(components=["keycloak"]), platform("dev", keycloak_on_postgres=False))
        pod = Pod(tmp_path, objects("ConfigMap", taken))
        (export,) = pod_spec(objects("CronJob", taken))["initContainers"]
        done = pod.run(keycloak_container(export, keycloak.url))
        assert done.returncode == 0, done.stderr
        assert "205 users exported" in done.stdout and "no password hashes" in done.stdout
        exported = json.loads((pod.backup / RUN / "keycloak" / "users.json").read_text())
        assert (
            exported[0]["groups"] == ["/analyst"] and exported[0]["federatedIdentities"][0]["userId"] == "77"
        )
        assert json.loads((pod.backup / RUN / "keycloak" / "realm.json").read_text())["realm"] == "nebari"
        (pod.backup / "LATEST").write_text(RUN + "\n")

        # After `--allow-change security.keycloak.database`: Keycloak on PostgreSQL, realm empty.
        rendered = render_restore(Backup(components=["keycloak"]), platform("dev"), "latest")
        restore = Pod(tmp_path, objects("ConfigMap", rendered))
        (users_step,) = pod_spec(objects("Job", rendered))["containers"]
        done = restore.run(keycloak_container(users_step, keycloak.url))
        assert done.returncode == 0, done.stderr
        assert "205 imported" in done.stdout and "UPDATE_PASSWORD" in done.stdout
        (request,) = keycloak.imported
        assert request["ifResourceExists"] == "SKIP"
        first = request["users"][0]
        assert first["username"] == "user0" and "id" not in first
        assert (
            first["groups"] == ["/analyst"]
            and first["federatedIdentities"][0]["identityProvider"] == "github"
        )
        assert all(u["requiredActions"] == ["UPDATE_PASSWORD"] for u in request["users"])
        assert not any("credentials" in u for u in request["users"])  # no hashes to carry over
    finally:
        keycloak.close()


def test_the_dump_and_restore_scripts_round_trip_a_real_postgresql(tmp_path: Path) -> None:
    """The rendered pg_dump.sh and pg_restore.sh with the real clients against a real server."""
    from realpostgres import bin_dir, postgres

    with postgres("conda-store", "cs-db-secret-2", "conda-store") as server:
        creds = {"user": "conda-store", "password": "cs-db-secret-2", "database": "conda-store"}
        server.psql("CREATE TABLE build (id int primary key, status text)", **creds)
        server.psql("INSERT INTO build VALUES (1, 'COMPLETED'), (2, 'FAILED')", **creds)

        rendered = render_backup(Backup(components=["conda_store"]), platform("dev"))
        pod = Pod(tmp_path / "pod", objects("ConfigMap", rendered))
        (dump,) = [
            c
            for c in pod_spec(objects("CronJob", rendered))["initContainers"]
            if c["name"] == "conda-store-database"
        ]
        real = f"{bin_dir()}{os.pathsep}{os.environ['PATH']}"  # the real clients, not the fakes

        def run(p: Pod, container: dict[str, Any], job: str = RUN) -> subprocess.CompletedProcess[str]:
            env = {**p.env(container, job), "PATH": real}
            env.update({k: v for k, v in server.env(**creds).items() if k in ("PGHOST", "PGPORT")})
            _sh, script = container["command"]
            return subprocess.run(
                ["sh", p.local(script)], env=env, capture_output=True, text=True, timeout=120, check=False
            )

        done = run(pod, dump)
        assert done.returncode == 0, done.stderr
        assert (pod.backup / RUN / "conda-store-postgresql.dump").read_bytes()[
            :5
        ] == b"PGDMP"  # custom format

        server.psql("UPDATE build SET status = 'LOST'; INSERT INTO build VALUES (3, 'NEW')", **creds)
        restore_objects = render_restore(Backup(components=["conda_store"]), platform("dev"), RUN)
        restore = Pod(tmp_path / "pod", objects("ConfigMap", restore_objects))
        (database,) = [
            c
            for c in pod_spec(objects("Job", restore_objects))["initContainers"]
            if c["name"] == "conda-store-database"
        ]
        done = run(restore, database)
        assert done.returncode == 0, done.stderr
        assert server.psql("SELECT id, status FROM build ORDER BY id", **creds) == "1|COMPLETED\n2|FAILED"
