"""`doit init`: the Keycloak root password goes straight into an encrypted file.

Nebari's `init` wrote the password into the config and a file in /tmp, and `deploy`
printed it. Here it is generated in memory, encrypted into `secrets/keycloak.enc.yaml`
and the config only gets a reference. Whatever is missing on a fresh machine is created
first: an age key (in the file sops reads by default) and `secrets/.sops.yaml` with a rule
for it. An existing password in that file is kept, never overwritten.
"""

from __future__ import annotations

import secrets as stdlib_secrets
from collections.abc import Mapping
from pathlib import Path

from stagegraph.sops.errors import RulesError

ROOT_PASSWORD_FILE = "secrets/keycloak.enc.yaml"  # noqa: S105 - a file name, not a password
ROOT_PASSWORD_KEY = "keycloak.root_password"  # noqa: S105 - a key name, not a password


def init_root_password_secret(
    project_root: Path,
    *,
    sops_preference: str = "auto",
    environ: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> dict[str, str]:
    """Generate and encrypt a root password; return the reference for the config.

    `notes` (if given) receives lines worth showing: a key or rules file created, an
    existing password kept. The password itself is never returned or shown.
    """
    import os

    from stagegraph.sops.binary import find_sops
    from stagegraph.sops.files import file_format, has_key, parse_tree
    from stagegraph.sops.keys import generate_key, key_file, local_key
    from stagegraph.sops.rules import add_age_rule, load_rules, rule_for
    from stagegraph.sops.run import Sops
    from stagegraph.sops.store import read_ciphertext
    from stagegraph.sops.writing import put_values

    env = dict(os.environ if environ is None else environ)
    said = notes if notes is not None else []
    ref = {"sops": ROOT_PASSWORD_FILE, "key": ROOT_PASSWORD_KEY}

    target = project_root / ROOT_PASSWORD_FILE
    if target.exists():
        data = read_ciphertext(target, ROOT_PASSWORD_FILE)
        tree = parse_tree(data, file_format(ROOT_PASSWORD_FILE))
        if tree is not None and has_key(tree, ROOT_PASSWORD_KEY):
            said.append(f"{ROOT_PASSWORD_FILE}: kept the root password already there")
            return ref

    key = local_key(env)
    if key is None:
        path = key_file(env)
        recipient = generate_key(path)
        said.append(
            f"{path}: created an age key (public key {recipient}); back this file up, it decrypts your secrets"
        )
    else:
        recipient = key.recipients[0]
    said.append(add_age_rule(project_root, recipient))
    rule = rule_for(load_rules(project_root), ROOT_PASSWORD_FILE)
    if rule is None:
        raise RulesError(
            f"{ROOT_PASSWORD_FILE}: no creation rule in secrets/.sops.yaml matches it; add one (see docs/secrets.md)"
        )
    if rule.age and not rule.other_keys and recipient not in rule.age:
        raise RulesError(
            f"secrets/.sops.yaml: the rule for {ROOT_PASSWORD_FILE} does not list your age key {recipient}, so "
            "you could not decrypt the password; add it to that rule, then run `doit init` again"
        )
    sops = Sops(find_sops(sops_preference), project_root, env)
    put_values(sops, ROOT_PASSWORD_FILE, {ROOT_PASSWORD_KEY: stdlib_secrets.token_urlsafe(24)})
    said.append(
        f"{ROOT_PASSWORD_FILE}: encrypted a new Keycloak root password (`doit secrets_decrypt --name keycloak --key {ROOT_PASSWORD_KEY}` shows it)"
    )
    return ref
