"""A Ctrl-C (or SIGTERM) while a command is still starting ends it with one line, exit 128 + signal.

Importing stagegraph's task modules takes a second or more after doit loads dodo.py. To
interrupt exactly then, the test puts a module named `pydantic` in the deployment folder
(first on doit's sys.path): the first import of pydantic, which only stagegraph's modules
make, finds it; it says so through a file and waits. The signal thus lands inside
dodo.py's imports every time, never before them or after the run's own handler is in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandboxproject import SandboxProject

from stagegraph import cli
from stagegraph.newdeployment import DODO

STALL = """\
import os, pathlib, time
pathlib.Path(os.environ["STALLED_MARKER"]).touch()
time.sleep(60)  # the test's signal ends this (bounded if it does not)
"""


@pytest.mark.parametrize("dodo", ["repository", "stagegraph new"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_dodo_imports_is_one_line(tmp_path: Path, dodo: str, sig: signal.Signals) -> None:
    p = SandboxProject.create(tmp_path / "deploy")
    if dodo == "stagegraph new":
        (p.root / "dodo.py").write_text(DODO)
    (p.root / "pydantic.py").write_text(STALL)
    marker = tmp_path / "stalled"
    p.extra_env["STALLED_MARKER"] = str(marker)
    proc = p.popen("list")
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the stall module was never imported"
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert out.splitlines() == [f"interrupted ({sig.name}) while starting; nothing ran"], out
    assert proc.returncode == 128 + sig


def test_a_ctrl_c_while_stagegraph_new_writes_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import stagegraph.newdeployment

    def interrupted(*args: object, **kwargs: object) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(stagegraph.newdeployment, "create_deployment", interrupted)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert cli.main(["new", str(tmp_path / "d")]) == 130
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"interrupted (SIGINT): {tmp_path / 'd'} may be incomplete; remove what it holds and run "
        "`stagegraph new` again"
    ]


def test_a_ctrl_c_while_stagegraph_new_starts_is_one_line(tmp_path: Path) -> None:
    # The console script's own start: the handler is in before argparse and the imports.
    code = (
        "import os, signal, sys\n"
        "import stagegraph.cli, argparse\n"
        "real = argparse.ArgumentParser.parse_args\n"
        "def parse(self, *a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(self, *a, **k)\n"
        "argparse.ArgumentParser.parse_args = parse\n"
        "sys.exit(stagegraph.cli.main(['new', sys.argv[1]]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True, timeout=120
    )
    assert proc.stderr.splitlines() == ["interrupted (SIGINT) while starting; nothing ran"], proc.stderr
    assert proc.returncode == 130 and not (tmp_path / "d").exists()
