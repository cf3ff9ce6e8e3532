"""The pinned charts' own data: default values, values.schema.json, CRDs.

A chart folder has the layout of `../shared/charts/<chart>/<version>/` (what CI reads):
`values.yaml`, `values.schema.json` when the chart has one, `crds/**.yaml`, and the same for
each bundled subchart under `charts/<name>/`. No chart templates are kept: the checks read
data, never run other projects' code.

`ChartStore` looks in its folders in order; with a `fetcher` it downloads a missing pinned
chart from its Helm repository (`index.yaml`, then the packaged `.tgz`) into its cache
folder, once per pinned version, keeping only those data files. When nothing has the chart,
`get` returns the reason, which the checks print by name as a skipped check.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

#: How a fetcher gets bytes: url -> body; raises OSError (or a subclass) when unreachable.
Fetch = Callable[[str], bytes]

_COMPLETE = ".stagegraph-complete"


@dataclass(frozen=True)
class ChartData:
    """One chart version's data files, read lazily."""

    chart: str
    version: str
    root: Path
    source: str

    @cached_property
    def values(self) -> dict[str, Any]:
        """Default values, with each bundled subchart's defaults under its name (Helm's rule)."""
        merged = _yaml_mapping(self.root / "values.yaml")
        sub_root = self.root / "charts"
        if sub_root.is_dir():
            for sub in sorted(p for p in sub_root.iterdir() if p.is_dir()):
                own = _yaml_mapping(sub / "values.yaml")
                mine = merged.get(sub.name)
                merged[sub.name] = _merge(own, mine) if isinstance(mine, dict) else own
        return merged

    @cached_property
    def schema(self) -> dict[str, Any] | None:
        path = self.root / "values.schema.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None

    def crds(self, wanted: Iterable[tuple[str, str]] | None = None) -> Iterator[dict[str, Any]]:
        """Every CustomResourceDefinition the chart (and its subcharts) ships.

        With `wanted` (group, kind) pairs, only files whose text names one of them are
        parsed: CRD files run to megabytes and a render uses a few of their kinds.
        """
        pairs = list(wanted) if wanted is not None else None
        for path in sorted(self.root.rglob("*.yaml")):
            if "crds" not in path.relative_to(self.root).parts:
                continue
            if pairs is not None:
                groups, kinds = _names(path)
                if not any(g in groups and k in kinds for g, k in pairs):
                    continue
            for doc in _crd_documents(path):
                if (
                    pairs is None
                    or (
                        (doc.get("spec") or {}).get("group"),
                        ((doc.get("spec") or {}).get("names") or {}).get("kind"),
                    )
                    in pairs
                ):
                    yield doc


_LINE = re.compile(r"^\s*(group|kind):\s*['\"]?([\w.-]+)['\"]?\s*$", re.MULTILINE)


@lru_cache(maxsize=512)
def _names(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """The values of every `group:` and `kind:` line of a YAML file (cheap, before a parse)."""
    found = _LINE.findall(path.read_text(encoding="utf-8"))
    return frozenset(v for k, v in found if k == "group"), frozenset(v for k, v in found if k == "kind")


@lru_cache(maxsize=512)
def _crd_documents(path: Path) -> tuple[dict[str, Any], ...]:
    # Cached per process: `doit check` runs once, the test suite checks many renders.
    docs = yaml.load_all(path.read_text(encoding="utf-8"), Loader=DataLoader)
    return tuple(d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")


class DataLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (C when built) that also reads a bare `=` (YAML 1.1's value tag).

    Upstream CRDs use `=` as an enum member (Kubernetes label selector operators).
    """


DataLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


@lru_cache(maxsize=64)
def _chart_data(chart: str, version: str, root: Path, source: str) -> ChartData:
    # One object per folder and process, so its parsed values and schema are read once.
    return ChartData(chart, version, root, source)


def _yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=DataLoader)  # noqa: S506 (a safe loader)
    return data if isinstance(data, dict) else {}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        out[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


@dataclass
class ChartStore:
    """Chart data by (chart, version): local folders first, then the fetcher into the cache."""

    folders: Sequence[Path] = ()
    cache_dir: Path | None = None
    fetcher: Fetch | None = None
    _failures: dict[str, str] = field(default_factory=dict)
    #: Set when the network itself failed (no DNS, no route): later charts are not tried.
    _unreachable: str | None = None

    def get(self, chart: str, version: str, repository: str = "") -> ChartData | str:
        """The chart's data, or one sentence saying why it is not available."""
        for folder in self.folders:
            root = folder / chart / version
            if root.is_dir():
                return _chart_data(chart, version, root, str(folder))
        if self.cache_dir is not None:
            cached = self.cache_dir / chart / version
            if (cached / _COMPLETE).is_file():
                return _chart_data(chart, version, cached, "cache")
        looked = ", ".join(str(f) for f in self.folders) or "no local chart folder"
        if self.fetcher is None or self.cache_dir is None or not repository:
            return f"no data for chart {chart} {version} (looked in {looked}; fetching is off)"
        key = f"{chart}@{version}"
        if key not in self._failures and self._unreachable is not None:
            self._failures[key] = f"not tried, the network is down ({self._unreachable})"
        if key not in self._failures:
            try:
                self._download(chart, version, repository)
            except (OSError, ValueError, KeyError, tarfile.TarError, yaml.YAMLError) as exc:
                self._failures[key] = f"{type(exc).__name__}: {exc}"
                # An HTTP answer (404...) is this repository's; no answer at all is the
                # network's, and every other repository would time out the same way.
                if isinstance(exc, OSError) and getattr(exc, "code", None) is None:
                    self._unreachable = self._failures[key]
        if key in self._failures:
            return (
                f"no data for chart {chart} {version} (looked in {looked}; "
                f"{repository} unreachable or incomplete: {self._failures[key]})"
            )
        return ChartData(chart, version, self.cache_dir / chart / version, repository)

    def _download(self, chart: str, version: str, repository: str) -> None:
        assert self.fetcher is not None and self.cache_dir is not None
        if repository.startswith("oci://"):
            raise ValueError("OCI chart repositories are not fetched; pass --charts DIR")
        base = repository.rstrip("/") + "/"
        index = yaml.safe_load(self.fetcher(base + "index.yaml"))
        entries = (index or {}).get("entries", {}).get(chart, [])
        urls = next((e.get("urls") or [] for e in entries if str(e.get("version")) == version), [])
        if not urls:
            raise KeyError(f"{chart} {version} is not in {base}index.yaml")
        url = urls[0] if "://" in urls[0] else base + urls[0]
        target = self.cache_dir / chart / version
        target.mkdir(parents=True, exist_ok=True)
        extract_chart_data(self.fetcher(url), target)
        (target / _COMPLETE).write_text(url + "\n", encoding="utf-8")


def _wanted(parts: tuple[str, ...]) -> bool:
    """Data files of a chart or a bundled subchart, relative to the chart's folder."""
    if not parts:
        return False
    # charts/<sub>/... : look at the subchart's own relative path.
    while len(parts) > 2 and parts[0] == "charts":
        rest = parts[2:]
        if rest[0] == "charts" or rest[0] == "crds" or len(rest) == 1:
            parts = rest
            continue
        return False
    if len(parts) == 1:
        return parts[0] in ("values.yaml", "values.schema.json")
    return parts[0] == "crds" and parts[-1].endswith((".yaml", ".yml"))


def extract_chart_data(archive: bytes, target: Path) -> None:
    """Keep the data files of a packaged chart (and of the packaged subcharts inside it)."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            parts = PurePosixPath(member.name).parts[1:]  # drop the chart's top folder
            if any(p in ("..", "") or p.startswith("/") for p in parts):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            data = handle.read()
            if len(parts) == 2 and parts[0] == "charts" and parts[1].endswith(".tgz"):
                extract_chart_data(data, target / "charts" / parts[1].rsplit("-", 1)[0])
            elif _wanted(parts):
                out = target.joinpath(*parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)


def http_fetch(timeout: float = 10.0) -> Fetch:
    """A fetcher over HTTPS with a bounded timeout (imported only when `doit check` fetches)."""

    def fetch(url: str) -> bytes:
        import urllib.request

        if not url.startswith(("https://", "http://")):
            raise ValueError(f"not an HTTP URL: {url}")
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            body: bytes = response.read()
        return body

    return fetch
