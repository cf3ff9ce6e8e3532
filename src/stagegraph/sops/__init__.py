"""SOPS secrets: find and run sops, decrypt once per run in memory, keys, rules and tasks.

Modules: `binary` (which sops), `run` (the subprocess wrapper and its one-line errors),
`files` (what a SOPS file tells without a key), `store` (decrypt each file at most once),
`keys` (age key pairs), `rules` (`secrets/.sops.yaml`), `writing` (put values into a
file), `plaintext` (plaintext config secrets), `init` (`doit init`'s root password),
`preflight` (every secret a deploy needs, before any stage applies), `tasks` (the
`doit secrets_*` commands). See docs/secrets.md.
"""
