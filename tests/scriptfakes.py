"""Stand-ins for running rendered service config scripts in a test (no tests here).

The scripts are executed the way their service loads them: `exec` with a traitlets-like
`c` in their globals. What they import from the service's own packages (z2jh, conda-store,
argo-jupyter-scheduler) is replaced by small fake modules for the duration of the run.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Section(types.SimpleNamespace):
    pass


class Config(dict[str, Section]):
    """traitlets' Config as scripts use it: `c.Class.trait = value`."""

    def __getattr__(self, name: str) -> Section:
        return self.setdefault(name, Section())


def module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


@contextmanager
def fake_modules(**mods: types.ModuleType) -> Iterator[None]:
    saved = {name: sys.modules.get(name) for name in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                del sys.modules[name]
            else:
                sys.modules[name] = old


def z2jh(values: dict[str, Any]) -> types.ModuleType:
    """The chart's z2jh helper, serving the rendered chart values."""

    def get_config(key: str, default: Any = None) -> Any:
        node: Any = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    return module("z2jh", get_config=get_config)


def unescape(text: str) -> str:
    """Terraform's view of a literal: `$${` is `${`."""
    return text.replace("$${", "${").replace("%%{", "%{")


def profile_list(values: dict[str, Any], user: Any) -> list[dict[str, Any]]:
    """Run the hub's rendered 03-profiles.py as z2jh does and ask its `profile_list` for `user`
    (a stand-in with `name`, `groups` and `async get_auth_state()`, as JupyterHub's User)."""
    c = types.SimpleNamespace(KubeSpawner=types.SimpleNamespace())
    script = unescape(values["hub"]["extraConfig"]["03-profiles.py"])
    with fake_modules(z2jh=z2jh(values)):
        exec(compile(script, "03-profiles.py", "exec"), {"c": c})
        result: list[dict[str, Any]] = asyncio.run(
            c.KubeSpawner.profile_list(types.SimpleNamespace(user=user))
        )
    return result


#: How conda_store_config.py reads its settings: from the mounted file, which a test does
#: not have; the runner hands the script the rendered settings instead.
CONDA_STORE_READS = (
    'with open("/etc/conda-store/settings.json") as handle:\n    settings = json.load(handle)\n'
)


def conda_store_config(
    script: str, settings: dict[str, Any], environ: dict[str, str], *, auth_base: type = object
) -> tuple[Config, dict[str, Any]]:
    """Run the rendered conda_store_config.py as conda-store loads it, with `environ` as the
    pod's whole environment; its `c` and its globals (`role_bindings`, classes)."""
    import os
    from unittest import mock

    script = unescape(script)
    assert CONDA_STORE_READS in script
    c = Config()
    namespace: dict[str, Any] = {"c": c, "settings": settings}
    fakes = {
        "requests": module("requests"),
        "conda_store_server": module("conda_store_server", api=object()),
        "conda_store_server._internal": module("conda_store_server._internal"),
        "conda_store_server._internal.server": module("conda_store_server._internal.server"),
        "conda_store_server._internal.server.dependencies": module("d", get_conda_store=None),
        "conda_store_server.server": module("conda_store_server.server", schema=object()),
        "conda_store_server.server.auth": module("a", GenericOAuthAuthentication=auth_base),
    }
    with fake_modules(**fakes), mock.patch.dict(os.environ, environ, clear=True):
        exec(compile(script.replace(CONDA_STORE_READS, ""), "conda_store_config.py", "exec"), namespace)
    return c, namespace
