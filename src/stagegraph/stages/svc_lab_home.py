"""What a user's server starts with: skeleton files, IPython settings, JupyterLab page config.

As in Nebari, every JupyterLab server gets:

- the skeleton files of a new home (`etc-skel`): copied into the user's home by the
  PROFILES script's init container. Unlike Nebari (which copies them at every start and so
  overwrites a user's edited .bashrc), a file is copied only when the home lacks it;
- system-wide IPython settings at /etc/ipython (`etc-ipython`), IPython's own system
  config folder: no history database (SQLite on NFS locks and corrupts) and the
  server's NB_UMASK applied to every kernel, so files made from a notebook are
  group-writable like files made from a terminal;
- JupyterLab's page config at /etc/jupyter/labconfig (`jupyterlab-page-config`): the
  jhub-apps extension is disabled unless `jhub_apps.enabled`, and left unlocked so a user
  may still turn it on for themselves.

The file contents are this project's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.svc_kube import NAMESPACE
from stagegraph.tfjson import Ref, TerraformModule, literal

SKEL_CONFIG_MAP = "etc-skel"
SKELETON: dict[str, str] = {
    ".bashrc": """\
# ~/.bashrc: read by interactive bash shells (JupyterLab terminals, ssh).
# Created from the platform's skeleton the first time this home was used; yours to edit.
[ -z "$PS1" ] && return

[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc

HISTCONTROL=ignoreboth
HISTSIZE=5000
shopt -s histappend checkwinsize

# conda environments built by conda-store are listed by `conda env list`.
if [ -f /opt/conda/etc/profile.d/conda.sh ]; then
    . /opt/conda/etc/profile.d/conda.sh
    conda activate default 2>/dev/null || true
fi

PS1='\\u@\\h:\\w\\$ '
alias ls='ls --color=auto'
alias ll='ls -alF'
""",
    ".profile": """\
# ~/.profile: read by login shells. Created from the platform's skeleton; yours to edit.
if [ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ]; then
    . "$HOME/.bashrc"
fi
if [ -d "$HOME/.local/bin" ]; then
    PATH="$HOME/.local/bin:$PATH"
fi
""",
    ".bash_logout": """\
# ~/.bash_logout: run when a login shell exits. Created from the platform's skeleton.
[ "$SHLVL" = 1 ] && [ -x /usr/bin/clear_console ] && /usr/bin/clear_console -q
""",
}

IPYTHON_CONFIG = """\
# stagegraph 07: IPython settings for every kernel (IPython reads /etc/ipython).
import os

# History is an SQLite file in the home, which lives on NFS: SQLite locking there fails.
c.HistoryManager.enabled = False

# The server's umask (NB_UMASK) for the kernel too: notebooks write group-writable files.
if "NB_UMASK" in os.environ:
    os.umask(int(os.environ["NB_UMASK"], 8))
"""


@dataclass(frozen=True)
class LabHome:
    mounts: list[tuple[dict[str, str], Ref]]
    #: The skeleton ConfigMap, which the PROFILES script's init container copies from.
    skel: Ref


def page_config(ctx: RenderContext) -> dict[str, Any]:
    return {
        "disabledExtensions": {"jupyterlab-jhub-apps": not ctx.config.jhub_apps.enabled},
        # Disabled, not locked: a user may still enable it in their own page config.
        "lockedExtensions": {},
    }


def lab_home(ctx: RenderContext, m: TerraformModule) -> LabHome:
    # Shell and Python text: literal() keeps Terraform from reading `${` or `%{` in it.
    skel = _config_map(m, SKEL_CONFIG_MAP, {name: literal(text) for name, text in SKELETON.items()})
    ipython = _config_map(m, "etc-ipython", {"ipython_config.py": literal(IPYTHON_CONFIG)})
    m.local("jupyterlab_page_config", page_config(ctx))
    page = _config_map(
        m, "jupyterlab-page-config", {"page_config.json": "${jsonencode(local.jupyterlab_page_config)}"}
    )
    return LabHome(
        mounts=[
            ({"name": "etc-ipython", "kind": "configmap", "mount_path": "/etc/ipython"}, ipython),
            (
                {
                    "name": "jupyterlab-page-config",
                    "kind": "configmap",
                    "mount_path": "/etc/jupyter/labconfig",
                },
                page,
            ),
        ],
        skel=skel,
    )


def _config_map(m: TerraformModule, name: str, data: dict[str, str]) -> Ref:
    return m.resource(
        "kubernetes_config_map",
        name.replace("-", "_"),
        {"metadata": [{"name": name, "namespace": NAMESPACE}], "data": data},
    )
