"""A provider's schema read from its documented SDKv2 schema definitions at a release tag.

No cdktf package exists for tehcyx/kind, keycloak/keycloak or alekc/kubectl. Their schemas
are declared as Go map literals (terraform-plugin-sdk v2), which are the same facts the
provider's `docs/` page renders in prose, stated exactly:

    "node_image": {Type: schema.TypeString, Optional: true, Computed: true},

This reader takes the provider's Go sources at the pinned tag (fetched from its public
repository by the maintainer running `doit provider_schemas`) and returns the schema in
`terraform providers schema -json` form, the way Terraform's SDKv2 core would present it
(`id` optional+computed, read-only nested resources as attributes, MaxItems/MinItems, the
`timeouts` block). A definition it cannot follow (a schema built at run time) is left out
and named in `skipped`, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SCALAR = {"TypeString": "string", "TypeInt": "number", "TypeFloat": "number", "TypeBool": "bool"}


class _Unreadable(Exception):
    pass


def _match_brace(text: str, start: int) -> int:
    """Index just past the brace that closes the one at `start`, skipping strings."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c in '"`':
            end = text.find(c, i + 1)
            while c == '"' and end > 0 and text[end - 1] == "\\":
                end = text.find(c, end + 1)
            i = end + 1
            continue
        if c == "/" and text.startswith("//", i):
            i = text.find("\n", i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise _Unreadable("unbalanced braces")


def _fields(body: str) -> dict[str, str]:
    """Top-level `Key: value,` pairs of a struct literal body."""
    out: dict[str, str] = {}
    i = 0
    while i < len(body):
        m = re.compile(r"\s*(\w+):\s*").match(body, i)
        if m is None:
            nxt = body.find("\n", i)
            if nxt < 0:
                break
            i = nxt + 1
            continue
        j = m.end()
        k = j
        while k < len(body) and body[k] not in ",\n":
            if body[k] in "{":
                k = _match_brace(body, k)
                continue
            if body[k] == "(":
                depth, k2 = 0, k
                while k2 < len(body):
                    depth += {"(": 1, ")": -1}.get(body[k2], 0)
                    k2 += 1
                    if depth == 0:
                        break
                k = k2
                continue
            if body[k] in '"`':
                k = body.find(body[k], k + 1) + 1
                continue
            k += 1
        out[m.group(1)] = body[j:k].strip()
        i = k + 1
    return out


@dataclass
class GoSources:
    text: str
    skipped: list[str] = field(default_factory=list)

    def func_body(self, name: str) -> str:
        m = re.search(rf"func {re.escape(name)}\([^)]*\)[^{{\n]*\{{", self.text)
        if m is None:
            raise _Unreadable(f"no func {name}")
        return self.text[m.end() - 1 : _match_brace(self.text, m.end() - 1)]

    def schema_map(self, expr: str, scope: str) -> dict[str, str]:
        """Entries of a `map[string]*schema.Schema` given as a literal, a call or a variable."""
        expr = expr.strip()
        if expr.startswith("map[string]*schema.Schema{"):
            brace = expr.index("{")
            return self._entries(expr[brace : _match_brace(expr, brace)])
        call = re.fullmatch(r"(\w+)\(\)", expr)
        if call:
            body = self.func_body(call.group(1))
            ret = re.search(r"return (map\[string\]\*schema\.Schema\{)", body)
            if ret:
                return self.schema_map(body[ret.start(1) :], body)
            # `return s`, or `return forceNewAll(s)`: a wrapper that changes flags only.
            var = re.search(r"return (?:\w+\()?(\w+)\)?\s*\n", body)
            if var:
                return self.schema_map(var.group(1), body)
        ident = re.fullmatch(r"\w+", expr)
        if ident:
            for where in (scope, self.text):  # a local variable, or a package-level one
                m = re.search(rf"\b{expr}\s*:?=\s*(map\[string\]\*schema\.Schema\{{)", where)
                if m and not re.search(rf"\b{expr}\[\"", where):
                    return self.schema_map(where[m.start(1) :], where)
        raise _Unreadable(f"schema built at run time: {expr[:60]}")

    def _entries(self, body: str) -> dict[str, str]:
        out: dict[str, str] = {}
        i = 1
        while True:
            m = re.compile(r"\s*\"([\w-]+)\":\s*(?:&schema\.Schema)?(\{)").search(body, i)
            if m is None:
                return out
            end = _match_brace(body, m.start(2))
            out[m.group(1)] = body[m.start(2) + 1 : end - 1]
            i = end

    def resource_block(self, expr: str, scope: str, resource: bool) -> dict[str, Any]:
        """Schema block of a `&schema.Resource{...}` literal or a func returning one."""
        expr = expr.strip()
        call = re.fullmatch(r"(\w+)\(\)", expr)
        if call:
            scope = self.func_body(call.group(1))
            m = re.search(r"&schema\.Resource\{", scope)
            if m is None:
                return self._merged(call.group(1), scope, resource)
            expr = scope[m.start() : _match_brace(scope, m.end() - 1)]
        brace = expr.index("{")
        fields = _fields(expr[brace + 1 : _match_brace(expr, brace) - 1])
        entries = self.schema_map(fields["Schema"], scope)
        block = self.block(entries, scope)
        attrs = block.setdefault("attributes", {})
        if resource and "id" not in attrs:
            attrs["id"] = {"type": "string", "optional": True, "computed": True}
        timeouts = fields.get("Timeouts", "")
        kinds = [k.lower() for k in ("Create", "Read", "Update", "Delete", "Default") if f"{k}:" in timeouts]
        if kinds:
            block.setdefault("block_types", {})["timeouts"] = {
                "nesting_mode": "single",
                "block": {"attributes": {k: {"type": "string", "optional": True} for k in kinds}},
            }
        return _sorted(block)

    def _merged(self, func: str, scope: str, resource: bool) -> dict[str, Any]:
        """`r := base(); r.Schema = mergeSchemas(r.Schema, extra); return r` (keycloak's IdPs)."""
        base = re.search(r"(\w+) := (\w+\(\))\n", scope)
        if base is None:
            raise _Unreadable(f"{func} returns no schema.Resource literal")
        var = base.group(1)
        merge = re.search(rf"{var}\.Schema = mergeSchemas\({var}\.Schema, (\w+)\)", scope)
        if merge is None:
            raise _Unreadable(f"{func} changes {base.group(2)} in a way this reader does not follow")
        block = self.resource_block(base.group(2), scope, resource)
        extra = self.block(self.schema_map(merge.group(1), scope), scope)
        for key in ("attributes", "block_types"):
            if extra.get(key):
                block[key] = {**block.get(key, {}), **extra[key]}
        return _sorted(block)

    def block(self, entries: dict[str, str], scope: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for name, body in entries.items():
            f = _fields(body)
            kind = f.get("Type", "").removeprefix("schema.")
            flags = {
                k.lower(): True
                for k in ("Required", "Optional", "Computed", "Sensitive")
                if f.get(k) == "true"
            }
            if f.get("Deprecated"):
                flags["deprecated"] = True
            elem = f.get("Elem", "")
            if kind in _SCALAR:
                attributes[name] = {"type": _SCALAR[kind], **flags}
                continue
            coll = {"TypeList": "list", "TypeSet": "set", "TypeMap": "map"}.get(kind)
            if coll is None:
                raise _Unreadable(f"{name}: type {kind or '?'}")
            if elem.startswith("&schema.Resource{"):
                inner = self.resource_block(elem.removeprefix("&"), scope, resource=False)
                if (
                    f.get("Computed") == "true"
                    and f.get("Optional") != "true"
                    and f.get("Required") != "true"
                ):
                    attributes[name] = {"type": [coll, _object_type(inner)], **flags}
                    continue
                bt: dict[str, Any] = {"nesting_mode": coll, "block": inner}
                for key in ("MinItems", "MaxItems"):
                    if f.get(key, "0").isdigit() and int(f.get(key, "0")):
                        bt[key.lower().replace("items", "_items")] = int(f[key])
                if f.get("Required") == "true" and "min_items" not in bt:
                    bt["min_items"] = 1
                blocks[name] = bt
                continue
            element = re.search(r"Type:\s*schema\.(\w+)", elem)
            elem_type = _SCALAR.get(element.group(1), "string") if element else "string"
            attributes[name] = {"type": [coll, elem_type], **flags}
        out: dict[str, Any] = {}
        if attributes:
            out["attributes"] = attributes
        if blocks:
            out["block_types"] = blocks
        return out


def _object_type(block: dict[str, Any]) -> list[Any]:
    members: dict[str, Any] = {n: a["type"] for n, a in block.get("attributes", {}).items()}
    for n, bt in block.get("block_types", {}).items():
        members[n] = [bt["nesting_mode"], _object_type(bt["block"])]
    return ["object", members]


def _sorted(block: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if block.get("attributes"):
        out["attributes"] = dict(sorted(block["attributes"].items()))
    if block.get("block_types"):
        out["block_types"] = {
            n: {**bt, "block": _sorted(bt["block"])} for n, bt in sorted(block["block_types"].items())
        }
    out["description_kind"] = "plain"
    return out


def extract_provider(go_text: str, provider_func: str) -> tuple[dict[str, Any], list[str]]:
    """Schema of the provider built by `provider_func` (e.g. "Provider"), and what was skipped."""
    src = GoSources(go_text)
    body = src.func_body(provider_func)
    m = re.search(r"&schema\.Provider\{", body)
    if m is None:
        raise _Unreadable(f"{provider_func} returns no schema.Provider literal")
    literal = body[m.start() : _match_brace(body, m.end() - 1)]
    fields = _fields(literal[literal.index("{") + 1 : -1])
    entries = src.schema_map(fields["Schema"], body) if "Schema" in fields else {}
    provider = _sorted(src.block(entries, body))
    out: dict[str, Any] = {"provider": {"version": 0, "block": provider}}
    skipped: list[str] = []
    for key, target in (("ResourcesMap", "resource_schemas"), ("DataSourcesMap", "data_source_schemas")):
        listing = fields.get(key, "{}")
        schemas: dict[str, Any] = {}
        for name, func in re.findall(r"\"(\w+)\":\s*(\w+\(\))", listing):
            try:
                schemas[name] = {"version": 0, "block": src.resource_block(func, body, resource=True)}
            except (_Unreadable, KeyError, ValueError) as exc:
                skipped.append(f"{name}: {exc}")
        out[target] = dict(sorted(schemas.items()))
    return out, skipped
