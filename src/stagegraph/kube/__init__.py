"""Kubernetes-facing pieces: a thin API client, server-side apply, the manifest driver, checks.

Nothing here imports the `kubernetes` package at module level (it takes seconds to import
and every doit command loads the stage modules); only `stagegraph.kube.client` imports it,
inside the functions that talk to a cluster.
"""
