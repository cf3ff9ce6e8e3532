"""A Terraform provider that serves a stored schema and plans by echoing the configuration.

Real Terraform reaches it (through `TF_REATTACH_PROVIDERS`, see
`stagegraph.checks.providers`) in place of the real provider, asks it for its schema, and
then does every check of its own: unknown arguments and blocks ("Did you mean ..."),
missing required arguments, wrong types, wrong nesting. The provider's answers are those of
a faithful planner that knows nothing of the remote system:

- validation refuses what every provider SDK refuses, a read-only (computed-only)
  attribute set in configuration, and accepts everything else: the provider's own
  validators (conflicts, allowed values) are not modelled;
- a planned resource is its configuration with every computed attribute the configuration
  leaves null marked unknown, exactly what a new resource's plan shows;
- a data source read during plan returns its configuration with computed attributes filled
  with typed placeholders (Terraform refuses unknown values from a read).

It speaks Terraform's plugin protocol 6 over gRPC with the message classes of the PyPI
package `tf`. `Served` runs one per provider inside the calling process, on unix sockets,
and gives the `TF_REATTACH_PROVIDERS` value that points Terraform at them.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc
from tf.types import Unknown
from tf.utils import read_dynamic_value, to_dynamic_value

Block = Mapping[str, Any]

_NEST_BLOCK = {
    "single": pb.Schema.NestedBlock.SINGLE,
    "list": pb.Schema.NestedBlock.LIST,
    "set": pb.Schema.NestedBlock.SET,
    "map": pb.Schema.NestedBlock.MAP,
    "group": pb.Schema.NestedBlock.GROUP,
}
_NEST_OBJECT = {
    "single": pb.Schema.Object.SINGLE,
    "list": pb.Schema.Object.LIST,
    "set": pb.Schema.Object.SET,
    "map": pb.Schema.Object.MAP,
}


def load_schema(path: Path, source: str) -> dict[str, Any]:
    """The schema of `source` (e.g. registry.terraform.io/hashicorp/helm) from a stored file."""
    raw = path.read_bytes()
    data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    schemas: dict[str, Any] = data["provider_schemas"]
    return dict(schemas[source])


# --- schema to protocol ---------------------------------------------------------------------


def _attribute_pb(name: str, attr: Block) -> pb.Schema.Attribute:
    kw: dict[str, Any] = {
        "name": name,
        "required": bool(attr.get("required")),
        "optional": bool(attr.get("optional")),
        "computed": bool(attr.get("computed")),
        "sensitive": bool(attr.get("sensitive")),
        "deprecated": bool(attr.get("deprecated")),
        "description": attr.get("description", ""),
    }
    if "nested_type" in attr:
        nested = attr["nested_type"]
        kw["nested_type"] = pb.Schema.Object(
            attributes=[_attribute_pb(n, a) for n, a in sorted(nested.get("attributes", {}).items())],
            nesting=_NEST_OBJECT[nested["nesting_mode"]],
        )
    else:
        kw["type"] = json.dumps(attr["type"]).encode()
    return pb.Schema.Attribute(**kw)


def block_pb(block: Block) -> pb.Schema.Block:
    return pb.Schema.Block(
        attributes=[_attribute_pb(n, a) for n, a in sorted(block.get("attributes", {}).items())],
        block_types=[
            pb.Schema.NestedBlock(
                type_name=name,
                block=block_pb(bt.get("block", {})),
                nesting=_NEST_BLOCK[bt["nesting_mode"]],
                min_items=int(bt.get("min_items", 0)),
                max_items=int(bt.get("max_items", 0)),
            )
            for name, bt in sorted(block.get("block_types", {}).items())
        ],
        description=block.get("description", ""),
        deprecated=bool(block.get("deprecated")),
    )


def schema_pb(entry: Block) -> pb.Schema:
    return pb.Schema(version=int(entry.get("version", 0)), block=block_pb(entry.get("block", {})))


# --- values ---------------------------------------------------------------------------------


def mark_computed(value: Any, block: Block, fill: bool = False) -> Any:
    """A block value with each null computed attribute unknown (or, with `fill`, a placeholder)."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, attr in block.get("attributes", {}).items():
        current = out.get(name)
        if current is None and attr.get("computed"):
            out[name] = placeholder(attr) if fill else Unknown
        elif current is not None and current is not Unknown and "nested_type" in attr:
            nested = attr["nested_type"]
            out[name] = _each(current, nested["nesting_mode"], nested, fill)
    for name, bt in block.get("block_types", {}).items():
        current = out.get(name)
        if not fill and not current and bt["nesting_mode"] in ("list", "set") and _computed_block(bt):
            # An SDKv2 Optional+Computed block (`kubelet_identity`) left out of the
            # configuration is "known after apply" in a real plan, not empty.
            out[name] = Unknown
        elif current is not None and current is not Unknown:
            out[name] = _each(current, bt["nesting_mode"], bt.get("block", {}), fill)
    return out


def _computed_block(bt: Block) -> bool:
    """A block every attribute of which is computed: the provider fills it in itself."""
    inner = bt.get("block", {})
    attributes = inner.get("attributes", {})
    return bool(attributes) and all(a.get("computed") for a in attributes.values())


def _each(value: Any, mode: str, block: Block, fill: bool) -> Any:
    if mode in ("single", "group"):
        return mark_computed(value, block, fill)
    if mode == "map" and isinstance(value, dict):
        return {k: mark_computed(v, block, fill) for k, v in value.items()}
    if isinstance(value, list):
        return [mark_computed(v, block, fill) for v in value]
    return value


#: A step of an attribute path: an attribute name, a list index, or a 1-tuple map key.
Step = str | int | tuple[str]


def read_only_set(value: Any, block: Block, path: list[Step]) -> list[list[Step]]:
    """Paths of read-only (computed, not optional) attributes the configuration sets.

    Terraform core leaves this check to providers (every SDK makes it), so the stand-in
    makes it too, with the same wording as terraform-plugin-framework.
    """
    if not isinstance(value, dict):
        return []
    found: list[list[Step]] = []
    for name, attr in block.get("attributes", {}).items():
        read_only = attr.get("computed") and not attr.get("optional") and not attr.get("required")
        if read_only and value.get(name) is not None:
            found.append([*path, name])
    for name, bt in block.get("block_types", {}).items():
        items = value.get(name)
        inner = bt.get("block", {})
        if isinstance(items, dict) and bt["nesting_mode"] in ("single", "group"):
            found += read_only_set(items, inner, [*path, name])
        elif isinstance(items, dict):
            for key, item in items.items():
                found += read_only_set(item, inner, [*path, name, (key,)])
        elif isinstance(items, list):
            for i, item in enumerate(items):
                found += read_only_set(item, inner, [*path, name, i])
    return found


def _step(step: Step) -> pb.AttributePath.Step:
    if isinstance(step, int):
        return pb.AttributePath.Step(element_key_int=step)
    if isinstance(step, tuple):
        return pb.AttributePath.Step(element_key_string=step[0])
    return pb.AttributePath.Step(attribute_name=step)


def _read_only(path: list[Step]) -> pb.Diagnostic:
    steps = [_step(p) for p in path]
    return pb.Diagnostic(
        severity=pb.Diagnostic.ERROR,
        summary="Invalid Configuration for Read-Only Attribute",
        detail="Cannot set value for this attribute as the provider has marked it as read-only. "
        "Remove the configuration line setting the value.",
        attribute=pb.AttributePath(steps=steps),
    )


def placeholder(attr: Block) -> Any:
    """A known value of the attribute's type, for data source reads during plan."""
    if "nested_type" in attr:
        nested = attr["nested_type"]
        one = {n: placeholder(a) for n, a in nested.get("attributes", {}).items()}
        return (
            one if nested["nesting_mode"] == "single" else ({} if nested["nesting_mode"] == "map" else [one])
        )
    return _typed(attr["type"])


def _typed(t: Any) -> Any:
    if t == "string":
        return ""
    if t == "number":
        return 0
    if t == "bool":
        return False
    if t == "dynamic":
        return None
    kind, inner = t[0], t[1]
    if kind in ("list", "set"):
        # One element, so an expression such as `status[0].load_balancer[0]` has something
        # to index during the plan.
        return [_typed(inner)]
    if kind == "map":
        return {}
    if kind == "object":
        return {k: _typed(v) for k, v in inner.items()}
    return [_typed(x) for x in inner]  # tuple


# --- the service ----------------------------------------------------------------------------


class EchoProvider(rpc.ProviderServicer):  # type: ignore[misc]
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self.resources: dict[str, Any] = dict(schema.get("resource_schemas", {}))
        self.data_sources: dict[str, Any] = dict(schema.get("data_source_schemas", {}))
        self._pb: pb.GetProviderSchema.Response | None = None

    def GetMetadata(self, request: Any, context: Any) -> Any:
        return pb.GetMetadata.Response(
            server_capabilities=pb.ServerCapabilities(plan_destroy=True),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in self.resources],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=n) for n in self.data_sources],
        )

    def GetProviderSchema(self, request: Any, context: Any) -> Any:
        if self._pb is None:
            self._pb = pb.GetProviderSchema.Response(
                provider=schema_pb(self.schema.get("provider", {})),
                provider_meta=pb.Schema(block=pb.Schema.Block()),
                resource_schemas={n: schema_pb(s) for n, s in self.resources.items()},
                data_source_schemas={n: schema_pb(s) for n, s in self.data_sources.items()},
                server_capabilities=pb.ServerCapabilities(plan_destroy=True),
            )
        return self._pb

    def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request: Any, context: Any) -> Any:
        block = self.resources[request.type_name]["block"]
        found = read_only_set(read_dynamic_value(request.config), block, [])
        return pb.ValidateResourceConfig.Response(diagnostics=[_read_only(path) for path in found])

    def ValidateDataResourceConfig(self, request: Any, context: Any) -> Any:
        block = self.data_sources[request.type_name]["block"]
        found = read_only_set(read_dynamic_value(request.config), block, [])
        return pb.ValidateDataResourceConfig.Response(diagnostics=[_read_only(path) for path in found])

    def ConfigureProvider(self, request: Any, context: Any) -> Any:
        return pb.ConfigureProvider.Response()

    def UpgradeResourceState(self, request: Any, context: Any) -> Any:
        state = json.loads(request.raw_state.json) if request.raw_state.json else None
        return pb.UpgradeResourceState.Response(upgraded_state=to_dynamic_value(state))

    def ReadResource(self, request: Any, context: Any) -> Any:
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request: Any, context: Any) -> Any:
        proposed = read_dynamic_value(request.proposed_new_state)
        prior = read_dynamic_value(request.prior_state)
        if proposed is None or prior is not None:
            # Destroy, or an update of a resource that exists: Terraform's proposal stands.
            return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state)
        block = self.resources[request.type_name]["block"]
        # legacy_type_system, as every SDKv2 provider answers: it lets a planned block be
        # unknown where the configuration has none (see mark_computed).
        return pb.PlanResourceChange.Response(
            planned_state=to_dynamic_value(mark_computed(proposed, block)), legacy_type_system=True
        )

    def ApplyResourceChange(self, request: Any, context: Any) -> Any:
        return pb.ApplyResourceChange.Response(
            diagnostics=[
                pb.Diagnostic(
                    severity=pb.Diagnostic.ERROR,
                    summary="The schema check provider does not apply",
                    detail="It stands in for the real provider for validate and plan only.",
                )
            ]
        )

    def ReadDataSource(self, request: Any, context: Any) -> Any:
        config = read_dynamic_value(request.config)
        block = self.data_sources[request.type_name]["block"]
        return pb.ReadDataSource.Response(state=to_dynamic_value(mark_computed(config, block, fill=True)))

    def StopProvider(self, request: Any, context: Any) -> Any:
        return pb.StopProvider.Response()


# --- serving -------------------------------------------------------------------------------


class _Stdio(stdio_rpc.GRPCStdioServicer):  # type: ignore[misc]
    def StreamStdio(self, request: Any, context: Any) -> Any:
        return iter(())


class Served:
    """Providers served from this process on one unix socket each, for TF_REATTACH_PROVIDERS."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]], directory: Path) -> None:
        self._servers: list[Any] = []
        self.reattach: dict[str, Any] = {}
        for i, (source, schema) in enumerate(sorted(schemas.items())):
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
            rpc.add_ProviderServicer_to_server(EchoProvider(schema), server)
            stdio_rpc.add_GRPCStdioServicer_to_server(_Stdio(), server)
            sock = str(directory / f"p{i}.sock")
            server.add_insecure_port(f"unix://{sock}")
            server.start()
            self._servers.append(server)
            entry = {
                "Protocol": "grpc",
                "ProtocolVersion": 6,
                "Pid": os.getpid(),
                "Test": True,
                "Addr": {"Network": "unix", "String": sock},
            }
            self.reattach[source] = entry
            # OpenTofu reads the same variable but spells a short source with its own
            # registry's host; Terraform ignores an entry no configuration asks for.
            if source.startswith("registry.terraform.io/"):
                self.reattach[source.replace("registry.terraform.io/", "registry.opentofu.org/", 1)] = entry

    def close(self) -> None:
        for server in self._servers:
            server.stop(grace=0)


def main(argv: list[str] | None = None) -> int:
    """`python -m stagegraph.tfschema.echo SOURCE=SCHEMA_FILE ...`: serve until stdin closes.

    Prints one line, the `TF_REATTACH_PROVIDERS` value, then serves. The check runs this
    as its own process so that the process which starts Terraform never holds gRPC's
    threads: a fork from such a process (Terraform's children are started with a
    pre-exec hook) trips gRPC's fork handlers and kills the child.
    """
    import sys
    import tempfile

    pairs = [arg.split("=", 1) for arg in (sys.argv[1:] if argv is None else argv)]
    schemas = {source: load_schema(Path(path), source) for source, path in pairs}
    with tempfile.TemporaryDirectory(prefix="sg-echo-") as tmp:
        served = Served(schemas, Path(tmp))
        try:
            sys.stdout.write(json.dumps(served.reattach) + "\n")
            sys.stdout.flush()
            sys.stdin.read()  # until the check closes our stdin (or dies)
        finally:
            served.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
