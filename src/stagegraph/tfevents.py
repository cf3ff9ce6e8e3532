"""Terraform's output as people read it: `-json` events turned back into text, secrets redacted.

`OutputReader` takes one raw line of output at a time and returns the lines to show (a
diagnostic event becomes the few lines Terraform prints for it in text mode), with every
secret replaced by `(redacted)`. As it goes it notes the last error in an `Outcome`, from
which `fallback_error` makes the one line a `TerraformRunError` carries.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

TAIL_LINES = 20
REDACTED = "(redacted)"
# Shorter values are not redacted: replacing every "1" or "yes" would garble the log, and a
# secret that short protects nothing anyway.
MIN_REDACT_LEN = 4
_MAX_ERROR_LEN = 300
# `Error: ...` as Terraform prints it in text mode, with or without the box drawing.
_ERROR_LINE = re.compile(r"^[\s│╷╵]*Error: (?P<text>.+)$")


@dataclass
class Outcome:
    """What one command did: its exit code, captured stdout, the error and the last lines."""

    exit_code: int
    stdout: str  # only when captured
    error_line: str | None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    # The tail as it stood right after the last error diagnostic: the embedded Terraform
    # sends its stderr (warnings) only at the end, which would push the error out of `tail`.
    error_tail: list[str] | None = None
    # Set when an error diagnostic was read: take `error_tail` once its lines are in `tail`.
    snapshot_due: bool = False


class OutputReader:
    """Turns Terraform's output, line by line, into the redacted lines to show.

    `secrets` are the values to redact (with their JSON-escaped forms); `on_version` gets
    the Terraform version from the `-json` version event.
    """

    def __init__(self, secrets: Iterable[str], on_version: Callable[[str], None]) -> None:
        values = {v for v in secrets if len(v) >= MIN_REDACT_LEN}
        # Also the JSON-escaped form, as a value with quotes or backslashes appears in -json.
        values |= {json.dumps(v)[1:-1] for v in values}
        self._secrets = sorted(values, key=len, reverse=True)
        self._on_version = on_version

    def redact(self, line: str) -> str:
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        return line

    def lines(self, text: str, events: bool, outcome: Outcome) -> list[str]:
        """The lines to show for one line of output, redacted; notes the last error as it goes.

        `events`: the line comes from stdout of a command run with `-json`.
        """
        return [self.redact(line) for line in self._readable(text, events, outcome)]

    def _readable(self, text: str, events: bool, outcome: Outcome) -> list[str]:
        if events and text.startswith("{"):
            try:
                event = json.loads(text)
            except ValueError:
                event = None
            if isinstance(event, dict):
                return self._event_lines(event, outcome)
        match = _ERROR_LINE.match(text)
        if match:
            outcome.error_line = self.redact(match["text"].strip())
        return [text]

    def _event_lines(self, event: Mapping[str, Any], outcome: Outcome) -> list[str]:
        if event.get("type") == "version":
            version = event.get("terraform") or event.get("tofu")
            if version:
                self._on_version(str(version))
        diag = event.get("diagnostic")
        if isinstance(diag, dict):
            if diag.get("severity") == "error":
                outcome.error_line = self.redact(_one_line_error(diag))
                outcome.snapshot_due = True
            return _diagnostic_lines(diag)
        return str(event.get("@message", "")).splitlines() or [""]


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


def fallback_error(outcome: Outcome) -> str:
    """The one line that says why a command failed: its last error, else its last line."""
    if outcome.error_line:
        line = outcome.error_line
    else:
        line = next((t.strip() for t in reversed(outcome.tail) if t.strip()), "no error output")
    line = " ".join(line.split())  # one line, whatever Terraform printed
    return line if len(line) <= _MAX_ERROR_LEN else line[: _MAX_ERROR_LEN - 3] + "..."
