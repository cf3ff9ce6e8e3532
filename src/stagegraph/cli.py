"""The `stagegraph` command: what needs no deployment folder yet.

    stagegraph new DIR [--provider sandbox] [--project-name demo] [--domain ...] [--auth password]

Everything else is a doit task run inside a deployment folder (`doit list`). Creating
that folder cannot be one: doit needs a dodo.py to start, and a new user has none yet.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from stagegraph.errors import StagegraphError


def main(argv: Sequence[str] | None = None) -> int:
    from stagegraph.signals import install_early

    install_early()  # a Ctrl-C while the command starts: one line, exit 130
    parser = argparse.ArgumentParser(prog="stagegraph", description="Create stagegraph deployments.")
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="create a deployment folder that works with `doit deploy` at once")
    new.add_argument("path", type=Path, help="the folder to create (or an empty one)")
    new.add_argument("--provider", default="sandbox", help="sandbox, local, existing, aws, gcp or azure")
    new.add_argument("--project-name", default="demo", help="project name")
    new.add_argument("--domain", default="demo.example.com", help="domain of the platform")
    new.add_argument("--auth", default="password", help="password, GitHub, Auth0 or custom")
    args = parser.parse_args(argv)

    from stagegraph.newdeployment import create_deployment

    # From here files are written: "nothing ran" would be wrong; say which folder may be
    # incomplete (Ctrl-C), or end as any program does (SIGTERM).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        lines = create_deployment(
            args.path,
            provider=args.provider,
            project_name=args.project_name,
            domain=args.domain,
            auth=args.auth,
        )
    except StagegraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"interrupted (SIGINT): {args.path} may be incomplete; remove what it holds and run "
            "`stagegraph new` again",
            file=sys.stderr,
        )
        return 130
    print("\n".join(lines))
    return 0
