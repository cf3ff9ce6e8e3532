"""A kept database volume comes back with the password of the new deploy's Secret.

PostgreSQL keeps the password of its first start; after `doit destroy` (which keeps the
volume) a new deploy generates a new one. The rendered StatefulSet's postStart hook sets
the role's password to the Secret's. Run here as rendered, with the real `sh`, `psql` and
`pg_isready`, against a real PostgreSQL started from the machine's binaries
(tests/realpostgres.py; skipped where there are none). Not run: the hook inside the
official image under a real kubelet.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
from checkhelpers import ROOT, render_file
from realpostgres import postgres

from stagegraph.keptvolumes import _objects


def rendered_hook(stage: str, name: str) -> list[str]:
    (render,) = [
        s
        for s in render_file(ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml")
        if s.name == stage
    ]
    sets = [
        o
        for o in _objects(json.loads(render.files["main.tf.json"])["locals"])
        if o["metadata"]["name"] == name
    ]
    (container,) = sets[0]["spec"]["template"]["spec"]["containers"]
    command: list[str] = container["lifecycle"]["postStart"]["exec"]["command"]
    return command


@pytest.mark.parametrize(
    ("stage", "name", "role"),
    [
        ("05-kubernetes-keycloak", "keycloak-postgresql", "keycloak"),
        ("07-kubernetes-services", "conda-store-postgresql", "conda-store"),
    ],
)
def test_the_hook_gives_a_kept_database_the_password_of_the_new_secret(
    stage: str, name: str, role: str
) -> None:
    command = rendered_hook(stage, name)
    assert command[:2] == ["sh", "-c"] and "getenv password POSTGRES_PASSWORD" in command[2]
    with postgres(role, "password-of-the-first-deploy", role) as server:
        # The container's environment: the image's variables and its local socket.
        env: dict[str, Any] = {
            "PATH": f"{server.bin}{os.pathsep}{os.environ['PATH']}",
            "POSTGRES_USER": role,
            "POSTGRES_DB": role,
            "POSTGRES_PASSWORD": "password-of-the-second-deploy",
            "PGPORT": str(server.port),  # the image's is the default 5432
            "PGHOST": str(server.socket_dir),  # the image's is /var/run/postgresql
        }
        hook = command  # verbatim: pg_isready and psql read PGPORT and PGHOST as in the image
        done = subprocess.run(hook, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "password-of-the-second-deploy" not in done.stdout + done.stderr
        assert (
            server.psql("SELECT 1", user=role, password="password-of-the-second-deploy", database=role) == "1"
        )
        with pytest.raises(AssertionError, match="password authentication failed"):
            server.psql("SELECT 1", user=role, password="password-of-the-first-deploy", database=role)
