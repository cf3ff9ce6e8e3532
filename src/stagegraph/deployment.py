"""Where a deployment's files live: the folder of its config, and one folder per environment.

A deployment is a folder. `nebari-config.yaml` owns the folder itself (`stages/`,
`.stagegraph/` with records, lock, logs, run summaries and doit's database); an
environment config `nebari-config.<env>.yaml` beside it owns `<env>/` (`<env>/stages/`,
`<env>/.stagegraph/`), as the gitops RFD proposes. What the configs of one folder share
is what they name explicitly: `secrets/` (each config refers to its own files), the plugin
paths they import and `lockfiles/`. Nothing a command writes is ever resolved against the
working directory or the folder of dodo.py, so a command run with another config never
touches this deployment's files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stagegraph.errors import StagegraphError

CONFIG_STEM = "nebari-config"
DEFAULT_CONFIG_NAME = f"{CONFIG_STEM}.yaml"
STATE_DIR = ".stagegraph"

#: An environment becomes a folder name and a CI file name: keep it one plain word.
_ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_ENV_CONFIG = re.compile(rf"^{re.escape(CONFIG_STEM)}\.([^./\\]+)\.yaml$")
#: Folders of a deployment that an environment folder must not be confused with.
RESERVED = frozenset({"stages", "secrets", "lockfiles", "schema", "plugins", "src", "tests", "docs"})


class DeploymentError(StagegraphError):
    """A config name, environment or path that cannot become a deployment folder."""


def check_environment_name(name: str, where: str) -> str:
    if not _ENV_NAME.match(name):
        raise DeploymentError(
            f"{where}: environment {name!r} is not a plain name; use lower-case letters, digits, "
            "'-' and '_' (at most 40, e.g. dev or prod)"
        )
    if name in RESERVED or name == "default":
        raise DeploymentError(
            f"{where}: environment {name!r} would clash with the folder's own {name}/; pick another name"
        )
    return name


def environment_of(config_path: Path) -> str:
    """`dev` for `nebari-config.dev.yaml`; "" (the folder's own deployment) for any other name."""
    match = _ENV_CONFIG.match(config_path.name)
    if match is None:
        return ""
    return check_environment_name(match.group(1), config_path.name)


def config_of_environment(folder: Path, environment: str) -> Path:
    """The config file of `environment` in `folder` (`""`: nebari-config.yaml)."""
    if not environment:
        return folder / DEFAULT_CONFIG_NAME
    check_environment_name(environment, f"env={environment}")
    return folder / f"{CONFIG_STEM}.{environment}.yaml"


def label(environment: str) -> str:
    return environment or "default"


@dataclass(frozen=True)
class Layout:
    """The paths one config owns. `folder` is the config's folder, `home` what it writes into."""

    config_path: Path
    environment: str

    @classmethod
    def of(cls, config_path: Path) -> Layout:
        return cls(config_path, environment_of(config_path))

    @property
    def folder(self) -> Path:
        return self.config_path.parent

    @property
    def home(self) -> Path:
        return self.folder / self.environment if self.environment else self.folder

    @property
    def state_dir(self) -> Path:
        return self.home / STATE_DIR

    def output_root(self, output_directory: str) -> Path:
        """`stagegraph.output_directory`, relative to the home folder.

        The value is confined to the deployment folder by its model (no absolute path, no
        '..', none of the folder's own subfolders: `stagegraph.schema.tool`); the project
        refuses a symlink leading out (`Project.output_root`).
        """
        return self.home / output_directory


def environments(folder: Path) -> list[tuple[str, Path]]:
    """(environment, config) for every deployment of `folder`: the default first, then by name."""
    found: list[tuple[str, Path]] = []
    if (folder / DEFAULT_CONFIG_NAME).is_file():
        found.append(("", folder / DEFAULT_CONFIG_NAME))
    for path in sorted(folder.glob(f"{CONFIG_STEM}.*.yaml")):
        match = _ENV_CONFIG.match(path.name)
        if match and _ENV_NAME.match(match.group(1)) and match.group(1) not in RESERVED:
            found.append((match.group(1), path))
    return found
