"""A provider's schema, in `terraform providers schema -json` form, read from a cdktf package.

The npm packages `@cdktf/provider-<name>` were generated from one provider version each
(`cdktf.provider.version` in their package.json). Their compiled JS carries an inline source
map whose `sourcesContent` is the generated TypeScript, and that source states, for every
attribute of every resource, data source and nested object:

    // wait_for_jobs - computed: false, optional: true, required: false
    private _waitForJobs?: boolean | cdktf.IResolvable;
    public get waitForJobs() { return this.getBooleanAttribute('wait_for_jobs'); }

and, for every argument that can be set, how it is written to Terraform:

    wait_for_jobs: { value: ..., isBlock: false, type: "simple", storageClassType: "boolean" },

Those two facts give Terraform's name, attribute or block, nesting mode, type and
required/optional/computed. What the package does not say is left out rather than guessed:
descriptions, `sensitive`, `deprecated`, and `max_items` of list blocks other than 1.

Pure functions of the TypeScript text: `extract_provider` takes the sources, returns the schema.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stagegraph.errors import StagegraphError

JsonType = str | list[Any]


class CdktfFormatError(StagegraphError):
    """The package's generated code is not in the shape this reader knows."""


_SOURCE_MAP = re.compile(r"sourceMappingURL=data:application/json;base64,(\S+)")
_CLASS = re.compile(r"^export class (\w+) extends cdktf\.(\w+) \{\n(.*?)^\}\n", re.M | re.S)
_INTERFACE = re.compile(r"^export interface (\w+)(?: extends [\w.]+)? \{\n(.*?)^\}\n", re.M | re.S)
_HCL_FN = re.compile(
    r"^export function (\w+)ToHclTerraform\(.*?\n  const attrs = \{\n(.*?)^  \};\n", re.M | re.S
)
_HCL_METHOD = re.compile(
    r"protected synthesizeHclAttributes\(\).*?\n    const attrs = \{\n(.*?)^    \};\n", re.M | re.S
)
_HCL_ENTRY = re.compile(
    r"^\s+(\w+): \{\s*value: (.*?),\s*isBlock: (true|false),\s*type: \"(\w+)\",\s*storageClassType: \"(\w+)\",\s*\}",
    re.M | re.S,
)
_MEMBER = re.compile(
    r"^  // (\S+) - computed: (true|false), optional: (true|false), required: (true|false)\n", re.M
)
_NEW_COMPLEX = re.compile(r"new (cdktf\.)?(\w+)\(this, \"[^\"]+\"(?:, (true|false))?\)")
_GETTER = re.compile(r"return (?:cdktf\.Token\.\w+\()?(cdktf\.Fn\.tolist\()?this\.(\w+)\('")
_PRIVATE_TYPE = re.compile(r"private _\w+\?: ([^;]+);")
_TF_TYPE = re.compile(r'tfResourceType = "([^"]+)"')
_IFACE_FIELD = re.compile(r"#(\w+) [\w#]+\}\n(?:.*\n)*?\s+readonly (\w+)(\?)?:", re.M)

_SCALARS: dict[str, JsonType] = {"string": "string", "number": "number", "boolean": "bool", "any": "dynamic"}
_GETTERS: dict[str, JsonType] = {
    "getStringAttribute": "string",
    "getNumberAttribute": "number",
    "getBooleanAttribute": "bool",
    "getListAttribute": ["list", "string"],
    "getNumberListAttribute": ["list", "number"],
    "getBooleanListAttribute": ["list", "bool"],
    "getStringMapAttribute": ["map", "string"],
    "getNumberMapAttribute": ["map", "number"],
    "getBooleanMapAttribute": ["map", "bool"],
    "getAnyMapAttribute": "dynamic",
    "interpolationForAttribute": "dynamic",
}


def typescript_of(js: str) -> str | None:
    """The generated TypeScript embedded in a compiled module's inline source map."""
    found = _SOURCE_MAP.search(js)
    if found is None:
        return None
    sources = json.loads(base64.b64decode(found.group(1))).get("sourcesContent") or []
    return "\n".join(s for s in sources if s)


def storage_type(kind: str, storage: str) -> JsonType | None:
    """Terraform type of a scalar or collection argument, or None for nested objects."""
    if storage in _SCALARS:
        return _SCALARS[storage]
    if storage == "anyMap":
        # cdktf's name for a dynamically typed attribute (kubernetes_manifest's manifest).
        return "dynamic"
    m = re.fullmatch(r"(string|number|boolean|any)((?:List|Map)*)", storage)
    if m is None:
        return None  # a nested object class such as "ReleaseSetList"
    inner: JsonType = _SCALARS[m.group(1)]
    wrappers = re.findall(r"List|Map", m.group(2))
    for i, wrapper in enumerate(reversed(wrappers)):
        outermost = i == len(wrappers) - 1
        name = "map" if wrapper == "Map" else ("set" if outermost and kind == "set" else "list")
        inner = [name, inner]
    return inner


@dataclass
class _Hcl:
    value: str
    is_block: bool
    kind: str
    storage: str


@dataclass
class _Member:
    name: str
    computed: bool
    optional: bool
    required: bool
    text: str


@dataclass
class _Module:
    """Every class, interface and HCL mapping of one resource's TypeScript (with its structs)."""

    classes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (base, body)
    interfaces: dict[str, str] = field(default_factory=dict)
    hcl: dict[str, dict[str, _Hcl]] = field(default_factory=dict)  # struct fn / class -> entries

    def add(self, ts: str) -> None:
        for name, base, body in _CLASS.findall(ts):
            self.classes[name] = (base, body)
            method = _HCL_METHOD.search(body)
            if method:
                self.hcl[name] = _entries(method.group(1))
        for name, body in _INTERFACE.findall(ts):
            self.interfaces[name] = body
        for fn, body in _HCL_FN.findall(ts):
            self.hcl[fn[0].upper() + fn[1:]] = _entries(body)


def _entries(body: str) -> dict[str, _Hcl]:
    return {
        m.group(1): _Hcl(m.group(2), m.group(3) == "true", m.group(4), m.group(5))
        for m in _HCL_ENTRY.finditer(body)
    }


def _members(body: str) -> list[_Member]:
    body = body.split("  // =========\n  // SYNTHESIS", 1)[0]
    marks = list(_MEMBER.finditer(body))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        out.append(
            _Member(
                m.group(1),
                m.group(2) == "true",
                m.group(3) == "true",
                m.group(4) == "true",
                body[m.end() : end],
            )
        )
    return out


def _struct_name(hcl: _Hcl) -> str:
    """The struct an HCL entry maps through: `releaseSetToHclTerraform` -> `ReleaseSet`."""
    m = re.search(r"(?<![.\w])(\w+)ToHclTerraform", hcl.value)
    if m is None:
        raise CdktfFormatError(f"no struct mapper in {hcl.value!r}")
    return m.group(1)[0].upper() + m.group(1)[1:]


class _Reader:
    def __init__(self, module: _Module) -> None:
        self.m = module

    def block(self, cls: str, hcl_key: str) -> dict[str, Any]:
        """The schema block of a resource, data source or nested OutputReference class."""
        _, body = self.m.classes[cls]
        hcl = self.m.hcl.get(hcl_key, {})
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for mem in _members(body):
            entry = hcl.get(mem.name)
            flags = {k: True for k in ("required", "optional", "computed") if getattr(mem, k)}
            if entry is not None and storage_type(entry.kind, entry.storage) is not None:
                attributes[mem.name] = {"type": storage_type(entry.kind, entry.storage), **flags}
            elif entry is not None:
                struct = _struct_name(entry)
                inner = self.block(struct + "OutputReference", struct)
                if entry.is_block:
                    blocks[mem.name] = _block_type(mem, entry, inner)
                    new = _NEW_COMPLEX.search(mem.text)
                    if entry.kind == "list" and new is not None and new.group(2).endswith("OutputReference"):
                        # A list block cdktf holds as one object is declared with MaxItems: 1.
                        blocks[mem.name]["max_items"] = 1
                else:
                    mode = {"struct": "single", "map": "map"}.get(entry.kind, entry.kind)
                    attributes[mem.name] = {"nested_type": {**inner, "nesting_mode": mode}, **flags}
            else:
                attributes[mem.name] = {"type": self.computed_type(mem.text), **flags}
        return _block(attributes, blocks)

    def computed_type(self, text: str) -> JsonType:
        """Type of a read-only attribute, from its getter or the class that wraps it."""
        new = _NEW_COMPLEX.search(text)
        if new is not None and new.group(1):
            found = storage_type("list", new.group(2)[0].lower() + new.group(2)[1:])
            if found is None:
                raise CdktfFormatError(f"unknown cdktf collection {new.group(2)}")
            return found
        if new is not None:
            cls = new.group(2)
            if cls.endswith("OutputReference"):
                return self.object_type(cls)
            return self.collection_type(cls, new.group(3) == "true")
        got = _GETTER.search(text)
        if got is None or got.group(2) not in _GETTERS:
            raise CdktfFormatError(f"no attribute getter in {text[:200]!r}")
        found = _GETTERS[got.group(2)]
        if got.group(1) and isinstance(found, list):
            return ["set", found[1]]
        return found

    def collection_type(self, cls: str, wraps_set: bool) -> JsonType:
        """Type of a List or Map class: what it hands out per element (an object, or a list)."""
        _, body = self.m.classes[cls]
        found = re.search(r"new (\w+)\(this, `\[", body) or re.search(r"new (\w+OutputReference)\(", body)
        if found is None:
            raise CdktfFormatError(f"class {cls} hands out no element class")
        element = found.group(1)
        kind = "map" if cls.endswith("Map") else "set" if wraps_set else "list"
        if element.endswith("OutputReference"):
            return [kind, self.object_type(element)]
        return [kind, self.collection_type(element, False)]

    def object_type(self, cls: str) -> JsonType:
        _, body = self.m.classes[cls]
        return ["object", {mem.name: self.computed_type(mem.text) for mem in _members(body)}]

    def provider_block(self, cls: str) -> dict[str, Any]:
        """The provider's configuration block (its nested blocks are plain interfaces)."""
        _, body = self.m.classes[cls]
        hcl = self.m.hcl.get(cls, {})
        members = {mem.name: mem for mem in _members(body) if mem.name != "alias"}
        return self._config_block(hcl, {n: (m.required, m.text) for n, m in members.items()})

    def _config_block(self, hcl: dict[str, _Hcl], fields: dict[str, tuple[bool, str]]) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for name, (required, text) in fields.items():
            entry = hcl.get(name)
            if entry is None:
                continue
            flag = {"required": True} if required else {"optional": True}
            simple = storage_type(entry.kind, entry.storage)
            if simple is not None:
                attributes[name] = {"type": simple, **flag}
                continue
            struct = _struct_name(entry)
            inner_fields = {
                tf: (opt != "?", "") for tf, _, opt in _IFACE_FIELD.findall(self.m.interfaces.get(struct, ""))
            }
            inner = self._config_block(self.m.hcl.get(struct, {}), inner_fields)
            if text:
                decl = _PRIVATE_TYPE.search(text)
                one = decl is not None and "[]" not in decl.group(1)
            else:
                one = "[]" not in _iface_type(self.m.interfaces, struct)
            bt: dict[str, Any] = {"nesting_mode": "set" if entry.kind == "set" else "list", "block": inner}
            if required:
                bt["min_items"] = 1
            if one:
                bt["max_items"] = 1
            blocks[name] = bt
        return _block(attributes, blocks)


def _iface_type(interfaces: dict[str, str], struct: str) -> str:
    # Nested provider blocks inside a provider block: whether their field is an array
    # decides list-of-one versus list (cdktf types a MaxItems: 1 block as one object).
    for body in interfaces.values():
        m = re.search(rf"readonly \w+\??: ([^;]*\b{struct}\b[^;]*);", body)
        if m:
            return m.group(1)
    return "[]"


def _block_type(mem: _Member, entry: _Hcl, inner: dict[str, Any]) -> dict[str, Any]:
    if entry.kind == "struct":
        # cdktf writes a block limited to one item as an object; SDKv2 timeouts are the one
        # block kind Terraform declares with nesting mode "single".
        if mem.name == "timeouts":
            return {"nesting_mode": "single", "block": inner}
        bt: dict[str, Any] = {"nesting_mode": "list", "block": inner, "max_items": 1}
    else:
        bt = {"nesting_mode": {"map": "map"}.get(entry.kind, entry.kind), "block": inner}
    if mem.required and bt["nesting_mode"] in ("list", "set"):
        # Terraform allows item counts on list and set blocks only.
        bt["min_items"] = 1
    return bt


def _block(attributes: dict[str, Any], blocks: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attributes:
        out["attributes"] = dict(sorted(attributes.items()))
    if blocks:
        out["block_types"] = dict(sorted(blocks.items()))
    out["description_kind"] = "plain"
    return out


def _has_dynamic(t: Any) -> bool:
    if t == "dynamic":
        return True
    if isinstance(t, list):
        return any(_has_dynamic(x) for x in (t[1].values() if t[0] == "object" else t[1:]))
    return False


def _block_has_dynamic(block: dict[str, Any]) -> bool:
    for attr in block.get("attributes", {}).values():
        if _has_dynamic(attr.get("type")) or (
            "nested_type" in attr and _block_has_dynamic(attr["nested_type"])
        ):
            return True
    return any(_block_has_dynamic(bt["block"]) for bt in block.get("block_types", {}).values())


def make_valid(block: dict[str, Any]) -> dict[str, Any]:
    """Where cdktf gives no type (a deeply recursive structure, typed `any`), the attribute is
    dynamic; Terraform forbids dynamic values inside set blocks, so such a set block is
    stored as a list block (the check then accepts what the set would, in any order)."""
    for bt in block.get("block_types", {}).values():
        make_valid(bt["block"])
        if bt["nesting_mode"] == "set" and _block_has_dynamic(bt["block"]):
            bt["nesting_mode"] = "list"
    for attr in block.get("attributes", {}).values():
        nested = attr.get("nested_type")
        if nested is not None:
            make_valid(nested)
            if nested["nesting_mode"] == "set" and _block_has_dynamic(nested):
                nested["nesting_mode"] = "list"
    return block


def extract_provider(modules: Iterable[Iterable[str]]) -> dict[str, Any]:
    """One provider's schema from its TypeScript sources, grouped by resource directory.

    Returns `{"provider": ..., "resource_schemas": ..., "data_source_schemas": ...}`, the
    value `terraform providers schema -json` gives under `provider_schemas[<source>]`.
    """
    provider: dict[str, Any] | None = None
    resources: dict[str, Any] = {}
    data_sources: dict[str, Any] = {}
    for sources in modules:
        module = _Module()
        for ts in sources:
            module.add(ts)
        reader = _Reader(module)
        for name, (base, body) in module.classes.items():
            if base == "TerraformProvider":
                provider = {"version": 0, "block": reader.provider_block(name)}
                continue
            if base not in ("TerraformResource", "TerraformDataSource"):
                continue
            type_name = _TF_TYPE.search(body)
            if type_name is None:
                raise CdktfFormatError(f"class {name} names no tfResourceType")
            target = resources if base == "TerraformResource" else data_sources
            target[type_name.group(1)] = {"version": 0, "block": make_valid(reader.block(name, name))}
    if provider is None:
        raise CdktfFormatError("the package defines no provider class")
    return {
        "provider": provider,
        "resource_schemas": dict(sorted(resources.items())),
        "data_source_schemas": dict(sorted(data_sources.items())),
    }
