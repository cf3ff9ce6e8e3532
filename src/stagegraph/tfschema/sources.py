"""Where each provider's schema comes from, and regenerating a stored schema from there.

Two kinds of source, both read by maintainers only (users get the committed files):

- `Npm`: the `@cdktf/provider-<name>` package generated from that very provider version
  (its package.json says which, in `cdktf.provider.version`); one `npm view` call maps a
  provider version to the package version, `npm pack` fetches it.
- `Sdkv2Repo`: providers with no such package (tehcyx/kind, keycloak/keycloak,
  alekc/kubectl). Their schema definitions are read at the release tag of the provider's
  public repository (`git clone --depth 1 --branch v<version>`), the same facts their
  `docs/` pages describe.

Network and subprocess use is confined to `regenerate`, run by `doit provider_schemas`.
"""

from __future__ import annotations

import collections
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagegraph.errors import StagegraphError


class SchemaSourceError(StagegraphError):
    """A provider schema could not be regenerated from its source."""


@dataclass(frozen=True)
class Npm:
    package: str


@dataclass(frozen=True)
class Sdkv2Repo:
    repository: str  # https clone URL
    directory: str  # the Go package that defines the provider
    provider_func: str
    tag_prefix: str = "v"


SOURCES: dict[str, Npm | Sdkv2Repo] = {
    "hashicorp/helm": Npm("@cdktf/provider-helm"),
    "hashicorp/kubernetes": Npm("@cdktf/provider-kubernetes"),
    "hashicorp/random": Npm("@cdktf/provider-random"),
    "kreuzwerker/docker": Npm("@cdktf/provider-docker"),
    "hashicorp/tls": Npm("@cdktf/provider-tls"),
    "hashicorp/aws": Npm("@cdktf/provider-aws"),
    "hashicorp/google": Npm("@cdktf/provider-google"),
    "hashicorp/azurerm": Npm("@cdktf/provider-azurerm"),
    "hashicorp/local": Npm("@cdktf/provider-local"),
    "cloudflare/cloudflare": Npm("@cdktf/provider-cloudflare"),
    "tehcyx/kind": Sdkv2Repo("https://github.com/tehcyx/terraform-provider-kind", "kind", "Provider"),
    "alekc/kubectl": Sdkv2Repo(
        "https://github.com/alekc/terraform-provider-kubectl", "kubernetes", "Provider"
    ),
    "keycloak/keycloak": Sdkv2Repo(
        "https://github.com/keycloak/terraform-provider-keycloak", "provider", "KeycloakProvider"
    ),
}


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 900) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchemaSourceError(f"cannot run {argv[0]}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SchemaSourceError(f"{' '.join(argv[:3])} failed (exit {done.returncode}): {last}")
    return done.stdout


def npm_version_for(package: str, provider_version: str) -> str:
    """The package version generated from `provider_version` (one `npm view` call)."""
    # For a range npm prints one `<package>@<version> '<provider version>'` line per version
    # (its --json form drops the package versions).
    out = _run(["npm", "view", f"{package}@>=0.0.0", "cdktf.provider.version"])
    found = [
        m.group(1)
        for m in re.finditer(rf"^{re.escape(package)}@(\S+) '([^']*)'$", out, re.M)
        if m.group(2) == provider_version
    ]
    if not found:
        raise SchemaSourceError(
            f"no version of {package} was generated from provider version {provider_version}; "
            "the cdktf packages are deprecated and stop at some version: read the schema with "
            "`terraform providers schema -json` on a machine that reaches the registry instead"
        )
    from packaging.version import Version

    return max(found, key=Version)


def from_npm(package: str, provider_version: str, work: Path) -> dict[str, Any]:
    version = npm_version_for(package, provider_version)
    tgz = _run(["npm", "pack", f"{package}@{version}", "--silent"], cwd=work).strip().splitlines()[-1]
    return from_tarball(work / tgz)


def from_tarball(tgz: Path) -> dict[str, Any]:
    """The schema from a packed cdktf provider package (`npm pack` output)."""
    from stagegraph.tfschema.cdktf import extract_provider, typescript_of

    modules: dict[str, list[str]] = collections.defaultdict(list)
    with tarfile.open(tgz) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/")
            if parts[1:2] != ["lib"] or not member.name.endswith(".js"):
                continue
            handle = archive.extractfile(member)
            ts = typescript_of(handle.read().decode("utf-8")) if handle else None
            if ts:
                modules[parts[2] if len(parts) > 3 else ""].append(ts)
    return extract_provider(modules.values())


def go_sources(checkout: Path, directory: str) -> str:
    files = sorted((checkout / directory).glob("*.go"))
    return "\n".join(p.read_text(encoding="utf-8") for p in files if not p.name.endswith("_test.go"))


def from_repo(src: Sdkv2Repo, provider_version: str, work: Path, checkout: Path | None) -> dict[str, Any]:
    from stagegraph.tfschema.sdkv2 import extract_provider

    if checkout is None:
        checkout = work / "repo"
        tag = src.tag_prefix + provider_version
        _run(["git", "clone", "--quiet", "--depth", "1", "--branch", tag, src.repository, str(checkout)])
    schema, skipped = extract_provider(go_sources(checkout, src.directory), src.provider_func)
    if skipped:
        raise SchemaSourceError(f"{src.repository}: could not read {'; '.join(skipped)}")
    return schema


def regenerate(source: str, version: str, checkout: Path | None = None) -> dict[str, Any]:
    """The provider schema of `source` at `version`, from its source (network needed)."""
    how = SOURCES.get(source.lower())
    if how is None:
        raise SchemaSourceError(
            f"no schema source is known for provider {source}; add it to "
            "stagegraph.tfschema.sources.SOURCES, or store `terraform providers schema -json` output"
        )
    with tempfile.TemporaryDirectory(prefix="sg-schema-") as tmp:
        if isinstance(how, Npm):
            return from_npm(how.package, version, Path(tmp))
        return from_repo(how, version, Path(tmp), checkout)
