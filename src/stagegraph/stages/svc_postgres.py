"""PostgreSQL from the official `postgres` image: Keycloak's (05) and conda-store's (07).

The image (`images.postgres` in the lockfile) creates `POSTGRES_DB` owned by
`POSTGRES_USER` with the password from the Secret on first start, in `PGDATA`: a
subdirectory of the volume, because a fresh volume's root holds `lost+found` and initdb
wants an empty directory. Readiness is `pg_isready` over TCP, which answers only once the
real server listens (the image's first-start server listens on the socket alone).

The image sets the password only when it creates the database; a volume kept from an
earlier deploy (`doit destroy` keeps it, see `stagegraph.keptvolumes`) would keep the old
password while the new deploy generated a new one into the Secret. So a postStart hook,
once the server listens, sets the role's password to the Secret's, through the local
socket (trusted inside the container) and psql's getenv meta-command, so it is in no
argument list; probes start only after the hook, so no client connects before. The hook never fails the
container: if the server is not up in time, the readiness probe says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagegraph.stage import RenderContext
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import secret_env
from stagegraph.stages.svc_stateful import PASSWORD_KEY, Database, render_database
from stagegraph.tfjson import TerraformModule

PORT = 5432
DATA_DIR = "/var/lib/postgresql/data"
#: The postStart hook (a script; it reads the password from the environment).
ADOPT_PASSWORD = """\
i=0
until pg_isready -q -h 127.0.0.1; do
  i=$((i + 1)); [ "$i" -ge 150 ] && exit 0; sleep 2
done
psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d "$POSTGRES_DB" <<'SQL' || true
\\getenv password POSTGRES_PASSWORD
\\getenv role POSTGRES_USER
ALTER ROLE :"role" PASSWORD :'password';
SQL
"""  # noqa: S105 - a script, no password in it

#: Nebari's PostgreSQL volumes had the Bitnami chart's default size; Nebari's config has
#: no field for it, so neither has this one.
SIZE = "8Gi"


@dataclass(frozen=True)
class Postgres:
    """A rendered PostgreSQL: connection facts (the password stays in `server.secret`)."""

    server: Database
    database: str
    username: str


def postgres(
    ctx: RenderContext, m: TerraformModule, name: str, node_selector: str, *, database: str, username: str
) -> Postgres:
    image = resolve_image(ctx, "postgres", field="images.postgres")
    probe = {
        "exec": {"command": ["sh", "-c", 'pg_isready -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"']}
    }
    container = {
        "name": "postgres",
        "image": image.ref,
        "env": [
            {"name": "POSTGRES_USER", "value": username},
            {"name": "POSTGRES_DB", "value": database},
            {"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"},
            secret_env("POSTGRES_PASSWORD", name, PASSWORD_KEY),
        ],
        "ports": [{"name": "postgres", "containerPort": PORT}],
        "readinessProbe": {**probe, "periodSeconds": 10},
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 20, "failureThreshold": 6},
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", ADOPT_PASSWORD]}}},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }
    server = render_database(
        m, name, container, node_selector, port=("postgres", PORT), mount_path=DATA_DIR, size=SIZE
    )
    return Postgres(server=server, database=database, username=username)
