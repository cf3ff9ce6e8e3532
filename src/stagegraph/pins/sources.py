"""Which registry answers for which pin, and the lookups `bump` and `verify` need.

A pin's kind follows from its group and model: charts from Helm repositories, images and
the kind node image from OCI registries, providers from the Terraform registry, Python
dependencies from PyPI, `terraform` from HashiCorp's releases. `kubernetes.max_version`
is no artefact: `bump` derives it from the kind node image it tests against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import TYPE_CHECKING, Literal, TypeVar

from stagegraph.lockfile import ChartPin, ImagePin, Lockfile, Pin, ProviderPin, VersionPin
from stagegraph.pins.errors import LookupFailedError, RegistryError, RegistryUnreachableError
from stagegraph.pins.registries import Registries, Release

if TYPE_CHECKING:
    from stagegraph.pins.helm import HelmClient
    from stagegraph.pins.httpclient import HttpClient
    from stagegraph.pins.oci import OciClient
    from stagegraph.pins.pypi import PypiClient
    from stagegraph.pins.tfregistry import TerraformRegistryClient

Kind = Literal["chart", "image", "provider", "python", "terraform", "derived"]
#: Kinds `verify_pins` checks: what a deploy pulls from a registry that may drop it.
VERIFIED_KINDS: tuple[Kind, ...] = ("chart", "image", "provider")

T = TypeVar("T")


def kind_of(key: str, pin: Pin) -> Kind:
    if isinstance(pin, ChartPin):
        return "chart"
    if isinstance(pin, ImagePin):
        return "image"
    if isinstance(pin, ProviderPin):
        return "provider"
    if key == "terraform":
        return "terraform"
    if key.startswith("python."):
        return "python"
    return "derived"


def value_field(pin: Pin) -> str:
    """The field of a pin that holds its version: `tag` for images, `version` otherwise."""
    return "tag" if isinstance(pin, ImagePin) else "version"


def value_of(pin: Pin) -> str:
    value = getattr(pin, value_field(pin))
    assert isinstance(value, str)
    return value


def origin(pin: Pin) -> str:
    """The registry host a pin is looked up at (for reports)."""
    import urllib.parse

    from stagegraph.pins.oci import parse_image

    if isinstance(pin, ChartPin):
        if pin.repository.startswith("oci://"):
            return parse_image(pin.repository).host
        return urllib.parse.urlsplit(pin.repository).netloc
    if isinstance(pin, ImagePin):
        return parse_image(pin.image).host
    if isinstance(pin, ProviderPin):
        parts = pin.source.split("/")
        return parts[0] if len(parts) == 3 else "registry.terraform.io"
    return ""


def pins_of(lock: Lockfile, sections: Iterable[str]) -> list[tuple[str, Pin]]:
    """Pins of the named lockfile sections, in lockfile order."""
    wanted = set(sections)
    keys = lock.keys()  # Lockfile.keys(), not a dict's: iterating the model yields fields
    return [(k, lock.pin(k)) for k in keys if k.split(".", 1)[0] in wanted]


class Sources:
    """Registry clients sharing one HTTP client (and so its tokens and parsed indexes)."""

    def __init__(self, registries: Registries | None = None, http: HttpClient | None = None) -> None:
        from stagegraph.pins.helm import HelmClient
        from stagegraph.pins.httpclient import HttpClient
        from stagegraph.pins.oci import OciClient
        from stagegraph.pins.pypi import PypiClient
        from stagegraph.pins.tfregistry import TerraformRegistryClient

        self.registries = registries or Registries()
        r = self.registries
        self.http = http or HttpClient(timeout=r.timeout, retries=r.retries, backoff=r.backoff)
        self.oci: OciClient = OciClient(self.http, r)
        self.helm: HelmClient = HelmClient(self.http, r, self.oci)
        self.terraform: TerraformRegistryClient = TerraformRegistryClient(self.http, r)
        self.pypi: PypiClient = PypiClient(self.http, r)

    def releases(self, key: str, pin: Pin) -> list[Release]:
        """Every version upstream publishes for this pin (dates where cheap)."""
        from stagegraph.pins.oci import parse_image

        kind = kind_of(key, pin)
        if isinstance(pin, ChartPin):
            return self.helm.releases(key, pin)
        if isinstance(pin, ImagePin):
            return [Release(t) for t in self.oci.tags(key, parse_image(pin.image))]
        if isinstance(pin, ProviderPin):
            return self.terraform.provider_versions(key, pin.source)
        if kind == "terraform" and isinstance(pin, VersionPin):
            return self.terraform.terraform_releases(key, pin.version)
        if kind == "python":
            return self.pypi.releases(key, key.split(".", 1)[1])
        return []

    def released(self, key: str, pin: Pin, version: str) -> date | None:
        """Date of one version where the listing has none; best effort, never raises."""
        from stagegraph.pins.oci import parse_image

        if isinstance(pin, ImagePin):
            return self.oci.created(key, parse_image(pin.image), version)
        if isinstance(pin, ProviderPin):
            return self.terraform.provider_published(key, pin.source, version)
        return None

    def missing(self, key: str, pin: Pin) -> str:
        """Empty when the pinned version still exists upstream, else why not."""
        from stagegraph.pins.oci import parse_image

        if isinstance(pin, ChartPin):
            return self.helm.exists(key, pin)
        if isinstance(pin, ImagePin):
            if self.oci.exists(key, parse_image(pin.image), pin.tag):
                return ""
            return f"{pin.image}:{pin.tag} not in {parse_image(pin.image).host}"
        if isinstance(pin, ProviderPin):
            versions = {r.version for r in self.terraform.provider_versions(key, pin.source)}
            return (
                "" if pin.version in versions else f"provider {pin.source} {pin.version} not in the registry"
            )
        return ""

    def run_all(
        self, keys: list[str], lookup: Callable[[str], T], action: str, outcome: str = "nothing was written"
    ) -> dict[str, T]:
        """Run `lookup` for every key in parallel; any failure fails the whole batch.

        Every lookup runs to the end so the error lists every failing pin at once, not
        just the first (a CI run then shows all that needs fixing).
        """
        results: dict[str, T] = {}
        errors: list[RegistryError] = []
        with ThreadPoolExecutor(max_workers=max(1, self.registries.workers)) as pool:
            futures = {key: pool.submit(lookup, key) for key in keys}
            for key, future in futures.items():
                try:
                    results[key] = future.result()
                except RegistryError as exc:
                    errors.append(exc)
        first = getattr(self.http, "unreachable", None)  # a test double may not track it
        if first is not None:
            raise RegistryUnreachableError(first, action, outcome)
        if errors:
            raise LookupFailedError(errors, action, outcome)
        return results
