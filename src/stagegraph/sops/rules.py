"""`secrets/.sops.yaml`: which files are secrets and whom they are encrypted for.

sops 3.11 matches a rule's `path_regex` against the file's path relative to the folder of
the config file (here: relative to `secrets/`), takes the first rule that matches, and a
rule without `path_regex` matches every file. The same logic here tells which files under
`secrets/` must be encrypted. age, PGP and cloud KMS rules are all passed to sops as they
are; only age recipients are read, to tell a user whether their own key is among them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from stagegraph.sops.errors import RulesError
from stagegraph.sops.files import file_format, is_encrypted

SECRETS_DIR = "secrets"
RULES_NAME = ".sops.yaml"
RULES_FILE = f"{SECRETS_DIR}/{RULES_NAME}"
#: The rule `doit secrets_keygen` and `doit init` add: every *.enc.yaml/.yml/.json file.
DEFAULT_PATH_REGEX = r"\.enc\.(yaml|yml|json)$"
#: Files under secrets/ that are never secrets themselves.
_NOT_SECRETS = {RULES_NAME, ".gitignore", ".gitattributes"}


@dataclass(frozen=True)
class Rule:
    index: int
    path_regex: str | None
    age: tuple[str, ...]
    other_keys: tuple[str, ...]  # pgp, kms, gcp_kms, azure_keyvault, key_groups, ...

    def matches(self, relative: str) -> bool:
        return self.path_regex is None or re.search(self.path_regex, relative) is not None


def rules_path(root: Path) -> Path:
    return root / RULES_FILE


def load_rules(root: Path) -> list[Rule]:
    """The creation rules, in order; [] when the file has none. Raises when it is missing."""
    import yaml

    path = rules_path(root)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(
            f"{RULES_FILE}: not found; create a key and the file with `doit secrets_keygen` (see docs/secrets.md)"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise RulesError(
            f"{RULES_FILE}: cannot read it as YAML; fix the file (see docs/secrets.md)"
        ) from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise RulesError(f"{RULES_FILE}: the top level should be a mapping with creation_rules")
    raw = data.get("creation_rules")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RulesError(f"{RULES_FILE}: creation_rules should be a list of rules")
    rules = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RulesError(f"{RULES_FILE}: creation_rules.{index} should be a mapping")
        regex = item.get("path_regex")
        if regex is not None:
            try:
                re.compile(str(regex))
            except re.error as exc:
                raise RulesError(
                    f"{RULES_FILE}: creation_rules.{index}.path_regex is not a valid regex ({exc.msg})"
                ) from None
        rules.append(
            Rule(
                index=index,
                path_regex=None if regex is None else str(regex),
                age=_age_recipients(item.get("age")),
                other_keys=tuple(sorted(k for k in item if k not in ("path_regex", "age") and item[k])),
            )
        )
    return rules


def _age_recipients(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(r.strip() for r in value.replace("\n", ",").split(",") if r.strip())
    if isinstance(value, list):
        return tuple(str(r).strip() for r in value if str(r).strip())
    return ()


def relative_to_secrets(label: str) -> str:
    """`secrets/a/b.enc.yaml` -> `a/b.enc.yaml`, the form path_regex is matched against."""
    path = PurePosixPath(label)
    return str(path.relative_to(SECRETS_DIR)) if path.parts[:1] == (SECRETS_DIR,) else str(path)


def rule_for(rules: list[Rule], label: str) -> Rule | None:
    relative = relative_to_secrets(label)
    return next((rule for rule in rules if rule.matches(relative)), None)


def secret_files(root: Path) -> Iterator[str]:
    """Every file under secrets/ (as `secrets/...`), the rules file and git files left out."""
    base = root / SECRETS_DIR
    if not base.is_dir():
        return
    for path in sorted(base.rglob("*")):
        if path.is_file() and path.name not in _NOT_SECRETS and path.suffix != ".md":
            yield path.relative_to(root).as_posix()


def check_files(root: Path) -> list[str]:
    """One line per file under secrets/ that a rule covers but that is not encrypted."""
    rules = load_rules(root)
    problems = []
    for label in secret_files(root):
        if rule_for(rules, label) is None:
            continue
        data = (root / label).read_bytes()
        if not is_encrypted(data, file_format(label)):
            problems.append(
                f"{label}: matches a creation rule of {RULES_FILE} but is not encrypted; encrypt its "
                f"values with `doit secrets_encrypt --file {label} ...`, delete it, and purge it from git history"
            )
    return problems


def add_age_rule(root: Path, recipient: str) -> str:
    """Make sure a rule encrypts *.enc.yaml files for `recipient`; a line saying what changed.

    Creates the rules file when missing, adds a rule when it has none; leaves a file that
    already has rules alone (its recipients are the team's decision) and says so.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from stagegraph.atomic import write_atomic

    path = rules_path(root)
    yaml = YAML()
    yaml.preserve_quotes = True
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = (
            "# sops creation rules for the files under secrets/ (see docs/secrets.md).\n"
            "# path_regex is matched against the path relative to this folder.\n"
        )
    except OSError as exc:
        raise RulesError(f"{RULES_FILE}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.load(text)
    except Exception:
        raise RulesError(
            f"{RULES_FILE}: cannot read it as YAML; fix the file (see docs/secrets.md)"
        ) from None
    prefix = ""
    if data is None:  # no file, or only comments: keep them above the new rules
        prefix, data = text, CommentedMap()
    if not isinstance(data, dict):
        raise RulesError(f"{RULES_FILE}: the top level should be a mapping with creation_rules")
    rules = load_rules(root) if path.exists() else []
    if rules:
        covered = [r for r in rules if recipient in r.age]
        if covered:
            return f"{RULES_FILE}: already encrypts for {recipient}"
        return (
            f"{RULES_FILE}: has rules already and none lists {recipient}; add it to the rules that "
            "should include you, then run `doit secrets_update_keys`"
        )
    rule = CommentedMap()
    rule["path_regex"] = DEFAULT_PATH_REGEX
    rule["age"] = recipient
    seq = CommentedSeq([rule])
    data["creation_rules"] = seq
    out = io.StringIO()
    yaml.dump(data, out)
    write_atomic(path, prefix + out.getvalue())
    return f"{RULES_FILE}: added a rule encrypting secrets/*.enc.yaml for {recipient}"
