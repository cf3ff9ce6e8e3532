"""Readable output for stages running in parallel (doit `-P N -P thread`).

Every line carries its stage as a prefix and reaches the stream in ONE write under one
lock, so lines of parallel stages never interleave mid-line (doit itself interleaves the
output of parallel tasks). This module's job is printing; it is the only library module
that does.

Colour is plain ANSI, only on a terminal, and off when NO_COLOR is set
(https://no-color.org) - no dependency for a few escape codes.
"""

from __future__ import annotations

import os
import sys
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_RED = "\033[31m"
_GREEN = "\033[32m"
_YELLOW = "\033[33m"
#: Stage prefix colours: a stage keeps its colour across runs (crc32 of the name).
_PALETTE = ("\033[36m", "\033[35m", "\033[34m", "\033[33m", "\033[32m", "\033[96m", "\033[95m")

_STATUS_COLOURS = {
    "applied": _GREEN,
    "destroyed": _GREEN,
    "planned": _GREEN,
    "failed": _RED,
    "skipped": _DIM,
    "up to date": _DIM,
}


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def colour_wanted(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # closed or detached stream
        return False


class Console:
    """Prefixed, whole-line, thread-safe output.

    `stream=None` means "sys.stdout at the time of each write", so output follows doit's
    and pytest's redirections. `stage_names` pads prefixes to the longest name so the text
    of all stages lines up. `colour=None` decides from the stream and NO_COLOR.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        stage_names: Iterable[str] = (),
        colour: bool | None = None,
    ) -> None:
        self._stream = stream
        self._width = max((len(n) for n in stage_names), default=0)
        self._colour = colour
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def _use_colour(self, stream: TextIO) -> bool:
        return colour_wanted(stream) if self._colour is None else self._colour

    def _prefix(self, stage: str, colour: bool) -> str:
        pad = " " * max(0, self._width - len(stage))
        if not colour:
            return f"[{stage}]{pad} "
        tint = _PALETTE[zlib.crc32(stage.encode()) % len(_PALETTE)]
        return f"{tint}[{stage}]{_RESET}{pad} "

    def _emit(self, stage: str, lines: Sequence[tuple[str, str]]) -> None:
        """Write `(style, text)` lines for `stage` as one write, under the lock."""
        with self._lock:
            stream = self.stream
            colour = self._use_colour(stream)
            prefix = self._prefix(stage, colour)
            parts = []
            for style, text in lines:
                # A stray newline inside a text must not make an unprefixed line.
                for part in text.split("\n"):
                    body = f"{style}{part}{_RESET}" if colour and style else part
                    parts.append(f"{prefix}{body}\n")
            try:
                stream.write("".join(parts))
                stream.flush()
            except BrokenPipeError:  # the reader went away: the run goes on, unheard
                from stagegraph.brokenpipe import stdout_gone

                stdout_gone()

    def line(self, stage: str, text: str) -> None:
        """`[stage] text`; each line of a multi-line text gets the prefix."""
        self._emit(stage, [("", part) for part in (text.splitlines() or [""])])

    def lines(self, stage: str, texts: Sequence[str]) -> None:
        """Several lines of `stage` as one block: nothing of another stage gets in between."""
        self._emit(stage, [("", text) for text in texts])

    def start(self, stage: str) -> None:
        self._emit(stage, [(_BOLD, "started")])

    def finish(self, stage: str, status: str, seconds: float, detail: str = "") -> None:
        """`[stage] <status> in 2.3 s`, then `: <detail>` when there is one."""
        key = status.split(":")[0].split(" (")[0].strip()
        text = f"{status} in {format_seconds(seconds)}" + (f": {detail}" if detail else "")
        self._emit(stage, [(_STATUS_COLOURS.get(key, ""), text)])

    def show_failure(self, stage: str, message: str, tail: Sequence[str], log: Path | None) -> None:
        """The failure, the last lines of its output, and where the full log is, together."""
        lines: list[tuple[str, str]] = [(_RED + _BOLD, f"FAILED: {message}")]
        if tail:
            lines.append((_DIM, "last lines of output:"))
            lines.extend(("", f"  | {t.rstrip()}") for t in tail)
        if log is not None:
            lines.append(("", f"full log: {log}"))
        self._emit(stage, lines)

    def warn(self, stage: str, text: str) -> None:
        self._emit(stage, [(_YELLOW, part) for part in (text.splitlines() or [""])])

    def close(self) -> None:
        """The run is over (the live view in `stagegraph.liveview` takes itself down)."""


class LineWriter:
    """A file-like sink for one stage's subprocess output that emits whole lines only.

    `write()` buffers a partial line until its newline arrives (pipes deliver chunks that
    split lines anywhere); `flush()` emits a pending partial line, so call it at the end
    of the stream - not in the middle, or that line is split in two. Thread-safe.
    """

    def __init__(self, console: Console, stage: str) -> None:
        self.console = console
        self.stage = stage
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            if "\n" in text:
                complete, _, self._buffer = self._buffer.rpartition("\n")
                # Emitted while holding our lock so two writers to one stage keep order.
                self.console.lines(self.stage, [t.removesuffix("\r") for t in complete.split("\n")])
        return len(text)

    def write_line(self, line: str) -> None:
        """One whole line (a callback for readers that already split lines)."""
        self.write(line if line.endswith("\n") else line + "\n")

    def flush(self) -> None:
        with self._lock:
            rest, self._buffer = self._buffer, ""
            if rest:
                self.console.lines(self.stage, [rest.removesuffix("\r")])

    def close(self) -> None:
        self.flush()
