"""Console output of parallel stages: whole prefixed lines, never interleaved mid-line."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest

from stagegraph.console import Console, LineWriter, colour_wanted, format_seconds


class SlowStream(io.StringIO):
    """Writes one character at a time and yields the GIL between them, so without the
    console's lock, concurrent lines would certainly interleave."""

    def write(self, text: str) -> int:
        for i, ch in enumerate(text):
            super().write(ch)
            if i % 7 == 0:
                time.sleep(0)
        return len(text)


def test_eight_threads_never_interleave_lines() -> None:
    stream = SlowStream()
    console = Console(stream, colour=False)
    per_thread = 60

    def work(i: int) -> None:
        writer = LineWriter(console, f"stage-{i}")
        for n in range(per_thread):
            if n % 2:
                console.line(f"stage-{i}", f"line {n} of stage-{i} " + "." * (n % 13))
            else:  # the subprocess path: chunks that split lines anywhere
                text = f"line {n} of stage-{i} " + "-" * (n % 11) + "\n"
                writer.write(text[:5])
                writer.write(text[5:])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 * per_thread
    seen: dict[str, set[int]] = {}
    for line in lines:
        m = re.fullmatch(r"\[(stage-\d+)\] line (\d+) of (stage-\d+) [.-]*", line)
        assert m, f"broken line: {line!r}"
        assert m.group(1) == m.group(3)
        seen.setdefault(m.group(1), set()).add(int(m.group(2)))
    assert all(s == set(range(per_thread)) for s in seen.values()) and len(seen) == 8


def test_threads_writing_to_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    with path.open("w", buffering=1) as handle:
        console = Console(handle, colour=False)

        def work(i: int) -> None:
            for _ in range(50):
                console.line(f"stage-{i}", "x" * 500)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    assert all(re.fullmatch(r"\[stage-\d\] x{500}", line) for line in lines)


def test_prefixes_are_padded_to_the_longest_stage() -> None:
    stream = io.StringIO()
    console = Console(stream, stage_names=["01-terraform-state", "04-kubernetes-ingress"], colour=False)
    console.line("01-terraform-state", "hello")
    console.line("04-kubernetes-ingress", "world")
    first, second = stream.getvalue().splitlines()
    assert first == "[01-terraform-state]    hello"
    assert second == "[04-kubernetes-ingress] world"
    assert first.index("hello") == second.index("world")


def test_start_finish_and_multiline() -> None:
    stream = io.StringIO()
    console = Console(stream, colour=False)
    console.start("04-kubernetes-ingress")
    console.finish("04-kubernetes-ingress", "applied", 2.34)
    console.finish("07-kubernetes-services", "applied", 125.0)
    console.line("s", "one\ntwo")
    console.lines("s", ["three\nfour"])
    assert stream.getvalue().splitlines() == [
        "[04-kubernetes-ingress] started",
        "[04-kubernetes-ingress] applied in 2.3 s",
        "[07-kubernetes-services] applied in 2 min 05 s",
        "[s] one",
        "[s] two",
        "[s] three",
        "[s] four",
    ]


def test_show_failure_prints_tail_and_log_together(tmp_path: Path) -> None:
    stream = io.StringIO()
    console = Console(stream, colour=False)
    log = tmp_path / "logs" / "05-kubernetes-keycloak.apply.log"
    console.show_failure(
        "05-kubernetes-keycloak",
        "terraform apply failed (exit 1)",
        ["Error: timeout", "  on main.tf.json line 3"],
        log,
    )
    assert stream.getvalue().splitlines() == [
        "[05-kubernetes-keycloak] FAILED: terraform apply failed (exit 1)",
        "[05-kubernetes-keycloak] last lines of output:",
        "[05-kubernetes-keycloak]   | Error: timeout",
        "[05-kubernetes-keycloak]   |   on main.tf.json line 3",
        f"[05-kubernetes-keycloak] full log: {log}",
    ]


def test_line_writer_emits_whole_lines_only() -> None:
    stream = io.StringIO()
    writer = LineWriter(Console(stream, colour=False), "s")
    assert writer.write("ab") == 2
    assert stream.getvalue() == ""
    writer.write("c\nde")
    assert stream.getvalue() == "[s] abc\n"
    writer.write("f\r\n\ng")
    assert stream.getvalue() == "[s] abc\n[s] def\n[s] \n"
    writer.write_line("already whole")  # the pending "g" comes first, joined to it
    writer.write("tail")
    writer.flush()
    writer.flush()  # nothing pending: nothing written
    assert stream.getvalue().splitlines()[3:] == ["[s] galready whole", "[s] tail"]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_follows_tty_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    assert colour_wanted(FakeTTY(), {}) is True
    assert colour_wanted(FakeTTY(), {"NO_COLOR": "1"}) is False
    assert colour_wanted(FakeTTY(), {"NO_COLOR": ""}) is True  # no-color.org: empty means unset
    assert colour_wanted(io.StringIO(), {}) is False

    tty = FakeTTY()
    monkeypatch.setenv("NO_COLOR", "1")
    Console(tty).finish("s", "failed", 1.0)
    assert "\033[" not in tty.getvalue()
    monkeypatch.delenv("NO_COLOR")
    Console(tty).finish("s", "failed", 1.0)
    coloured = tty.getvalue().splitlines()[1]
    assert "\033[31m" in coloured and re.sub(r"\033\[[0-9;]*m", "", coloured) == "[s] failed in 1.0 s"


def test_default_stream_is_stdout_at_write_time(capsys: pytest.CaptureFixture[str]) -> None:
    Console(colour=False).line("s", "to stdout")
    assert capsys.readouterr().out == "[s] to stdout\n"


def test_format_seconds() -> None:
    assert format_seconds(0.04) == "0.0 s"
    assert format_seconds(59.94) == "59.9 s"
    assert format_seconds(3600) == "60 min 00 s"
