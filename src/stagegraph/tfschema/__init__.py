"""Terraform provider schemas: stored next to the lockfile, read from their sources, served.

`store` (the files), `cdktf` and `sdkv2` (the two readers), `sources` (which reader for
which provider, and regeneration), `echo` (the stand-in provider real Terraform talks to),
`tasks` (`doit provider_schemas`). The check that uses them is `stagegraph.checks.providers`.
"""
