"""Find, read and validate `nebari-config.yaml`; export its JSON Schema.

Every failure is a `ConfigError` whose problems are single lines naming the file and what
to do: a missing or unreadable file, a YAML syntax error (with line and column), a
duplicate key, a top level that is not a mapping, an empty file, or validation problems
(`<file>: <dotted.path>: <message> (got <value>)`, see `stagegraph.schema.problems`).
No error ever shows the value of a secret field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from stagegraph.errors import ConfigError

if TYPE_CHECKING:
    from stagegraph.schema.config import NebariConfig

DEFAULT_CONFIG = "nebari-config.yaml"
CONFIG_ENV = "STAGEGRAPH_CONFIG"
SCHEMA_FILE = "schema/nebari-config.schema.json"

# The C loader parses several times faster; the pure-Python one is the fallback when PyYAML
# was built without libyaml.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKey(yaml.MarkedYAMLError):
    """A mapping repeats a key; YAML loaders silently keep the last one."""


class _Loader(_BaseLoader):  # type: ignore[misc]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            first = seen.setdefault(key_node.value, key_node)
            if first is not key_node:
                raise _DuplicateKey(
                    problem=f"duplicate key '{key_node.value}' (first at line {first.start_mark.line + 1})",
                    problem_mark=key_node.start_mark,
                )
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


#: Bounds on what reading a config may cost. A real config has a few thousand nodes; YAML
#: aliases can make a few hundred bytes expand to billions (an "alias bomb") that every
#: later walk over the data (validation, plaintext checks, digests) pays for.
MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64


class _TooCostly(yaml.MarkedYAMLError):
    """The document exceeds a bound on size, expanded size or depth."""


def _check_cost(root: yaml.Node) -> None:
    """Refuse a node graph whose expansion (every alias copied out) is too big or too deep.

    Iterative, memoised per node: linear in the distinct nodes however large the
    expansion, and no recursion limit to hit on a deeply nested document.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES or depth[key] > MAX_DEPTH:
                what = (
                    f"more than {MAX_NODES} values once its aliases are expanded"
                    if size[key] > MAX_NODES
                    else f"nested more than {MAX_DEPTH} levels deep"
                )
                raise _TooCostly(problem=f"the document is {what}", problem_mark=node.start_mark)
            continue
        if key in size:
            continue
        if key in on_path:
            raise _TooCostly(problem="an alias refers to itself", problem_mark=node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml_bounded(text: str) -> Any:
    """`yaml.safe_load` with duplicate keys refused and the cost bounds above enforced.

    Raises `yaml.YAMLError` (a `MarkedYAMLError` with a position where there is one).
    """
    if len(text) > MAX_BYTES:
        raise _TooCostly(problem=f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_cost(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def resolve_config_path(
    explicit: str | None, env: Mapping[str, str], root: Path, environment: str | None = None
) -> Path:
    """The config to use: an explicit path, else $STAGEGRAPH_CONFIG, else nebari-config.yaml.

    Relative paths are relative to `root` (the folder of dodo.py). `environment` (`doit
    env=dev`) picks `nebari-config.<env>.yaml` in the folder of that config instead.
    """
    from stagegraph.deployment import config_of_environment, environment_of

    chosen = explicit or env.get(CONFIG_ENV) or DEFAULT_CONFIG
    path = Path(chosen)
    path = path if path.is_absolute() else root / path
    if environment:
        if explicit and environment_of(path) not in ("", environment):
            raise ConfigError(
                str(path),
                [f"env={environment} and config={explicit} name different environments; give one of them"],
            )
        path = config_of_environment(path.parent, environment)
    return path


def load_config(path: Path, display_name: str | None = None) -> NebariConfig:
    """Read and validate the config at `path`; errors name it as `display_name`."""
    name = display_name or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            name,
            [f"{name}: file not found; create one with `doit init`, or point {CONFIG_ENV} at your config"],
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            name, [f"{name}: is a directory, not a file; point {CONFIG_ENV} at the config file"]
        ) from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(name, [f"{name}: cannot read the file ({reason}); check its permissions"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            name, [f"{name}: not UTF-8 text (bad byte at offset {err.start}); save the file as UTF-8"]
        ) from None
    return parse_config(text, name)


def parse_config(text: str, filename: str) -> NebariConfig:
    """Validate config text; `filename` is only used in error messages."""
    from stagegraph.schema.config import NebariConfig
    from stagegraph.schema.problems import format_problems
    from stagegraph.upgrade.versions import gate_problem

    data = _load_yaml(text, filename)
    # Before the schema: an old config fails on many keys at once, and only the first
    # line matters (run the upgrade).
    problem = gate_problem(data, filename)
    if problem is not None:
        raise ConfigError(filename, [problem])
    try:
        return NebariConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(filename, format_problems(err, filename, NebariConfig)) from None


def _load_yaml(text: str, filename: str) -> dict[str, Any]:
    try:
        data = load_yaml_bounded(text)
    except yaml.MarkedYAMLError as err:
        where = f"{_at(err.problem_mark)}: " if err.problem_mark is not None else ""
        what = err.problem or "invalid YAML"
        if err.context:
            # "while scanning a quoted scalar" + where it started: often where the mistake is.
            started = f" at {_at(err.context_mark)}" if err.context_mark is not None else ""
            what = f"{what} ({err.context}{started})"
        fix = (
            "remove one of them"
            if isinstance(err, _DuplicateKey)
            else "write the values out instead of through so many aliases, or split the file"
            if isinstance(err, _TooCostly)
            else "fix the YAML there"
        )
        raise ConfigError(filename, [f"{filename}: {where}{what}; {fix}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError(filename, [f"{filename}: invalid YAML ({err}); fix the file"]) from None
    if data is None:
        raise ConfigError(
            filename,
            [f"{filename}: the file is empty; write a config with `doit init` (project_name is required)"],
        )
    if not isinstance(data, dict):
        from stagegraph.schema.problems import describe

        raise ConfigError(
            filename,
            [
                f"{filename}: the top level should be a mapping of keys such as project_name and provider (got {describe(data)})"
            ],
        )
    return data


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def export_json_schema() -> str:
    """The JSON Schema of the config, deterministic (sorted keys) with a trailing newline.

    Committed as schema/nebari-config.schema.json (regenerate with `doit schema`); point an
    editor at it with `# yaml-language-server: $schema=schema/nebari-config.schema.json`.
    """
    from stagegraph.schema.config import NebariConfig

    document: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **NebariConfig.model_json_schema(mode="validation"),
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
