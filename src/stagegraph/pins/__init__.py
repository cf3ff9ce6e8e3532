"""Pinned versions over time: quarterly bumps and an availability check.

Everything here is about the lockfile's relation to upstream registries: parsing version
tags (`versions`), asking registries what exists (`http`, `oci`, `helm`, `tfregistry`,
`pypi`, dispatched by `sources`), choosing which group to bump (`cadence`), rewriting the
lockfile without touching its comments (`rewrite`, `changelog`), and the two commands
built on them (`bump`, `verify`, wired for doit in `tasks`).

Nothing in this package imports the HTTP machinery at import time: `doit list` imports
`stagegraph.pins.tasks` and must stay fast.
"""
