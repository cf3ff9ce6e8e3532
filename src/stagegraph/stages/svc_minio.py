"""MinIO from the lockfile's minio chart, standalone: Loki's chunks and conda-store's artifacts.

Two releases of the same chart (`loki-minio` in svc_monitoring, `conda-store-minio` in
svc_conda_store_backends) made the same way here, so a fix to one is a fix to both:

- The root credentials are generated into a Secret the chart reads (`existingSecret`): the
  password exists only in Terraform state and the Secret; clients read it from there
  (`secret_env` with ROOT_USER_KEY / ROOT_PASSWORD_KEY).
- The chart's default `users` (a `console` user whose password is printed in the chart's
  values.yaml, with the consoleAdmin policy, created by its post-install job) are emptied:
  nothing here logs in as it, and anyone who read the chart could. `doit check` flags a
  release that keeps it (helm-values, DEFAULT_CREDENTIALS).
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.common import deep_merge, helm_release
from stagegraph.stages.svc_kube import NAMESPACE, opaque_secret, random_secret, tf_key
from stagegraph.tfjson import Ref, TerraformModule, depends

#: The keys of the credentials Secret, as the chart's `existingSecret` reads them.
ROOT_USER_KEY = "rootUser"
ROOT_PASSWORD_KEY = "rootPassword"  # noqa: S105 - a key's name
#: The S3 API's port on the release's Service (named after the release).
PORT = 9000


def minio(
    ctx: RenderContext,
    m: TerraformModule,
    release: str,
    *,
    secret: str,
    user: str,
    bucket: str,
    size: Any,
    resources: dict[str, Any],
    node_selector: str,
    overrides: dict[str, Any] | None = None,
) -> Ref:
    """One standalone MinIO with one bucket; `overrides` (the user's values) merge last."""
    credentials = opaque_secret(
        m, secret, {ROOT_USER_KEY: user, ROOT_PASSWORD_KEY: random_secret(m, f"{tf_key(release)}_root")}
    )
    values = {
        "mode": "standalone",
        "existingSecret": secret,
        "buckets": [{"name": bucket, "policy": "none", "purge": False}],
        "persistence": {"enabled": True, "size": size},
        "resources": {"requests": resources},
        "nodeSelector": node_selector,
        "users": [],
    }
    release_ref: Ref = helm_release(
        m,
        ctx,
        release,
        "minio",
        NAMESPACE,
        deep_merge(values, overrides or {}),
        depends_on=depends(credentials),
    )
    return release_ref
