"""The stored provider schemas and the two readers that produce them.

The readers are exercised on small sources written here in the shape the real generated
code has (no npm or provider source is committed); the stored files are checked for the
`terraform providers schema -json` format and for facts anyone can read in the providers'
documentation.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from tf.types import Unknown

from stagegraph.lockfile import load_lockfile
from stagegraph.tfschema import cdktf, sdkv2
from stagegraph.tfschema.echo import mark_computed, placeholder, read_only_set
from stagegraph.tfschema.store import encode, read_document, schema_dir, schema_file

ROOT = Path(__file__).resolve().parents[1]
LOCKFILE = ROOT / "lockfiles" / "versions.yaml"
SCHEMAS = schema_dir(LOCKFILE)

# --- cdktf reader ---------------------------------------------------------------------------

TS = """
export interface WidgetConfig extends cdktf.TerraformMetaArguments {
}
export function widgetPartToHclTerraform(struct?: WidgetPart | cdktf.IResolvable): any {
  if (!cdktf.canInspect(struct)) { return struct; }
  const attrs = {
    size: {
      value: cdktf.numberToHclTerraform(struct!.size),
      isBlock: false,
      type: "simple",
      storageClassType: "number",
    },
  };
  return attrs;
}

export class WidgetPartOutputReference extends cdktf.ComplexObject {
  // size - computed: false, optional: false, required: true
  private _size?: number;
  public get size() {
    return this.getNumberAttribute('size');
  }
}

export function widgetTagToHclTerraform(struct?: WidgetTag | cdktf.IResolvable): any {
  const attrs = {
    key: {
      value: cdktf.stringToHclTerraform(struct!.key),
      isBlock: false,
      type: "simple",
      storageClassType: "string",
    },
  };
  return attrs;
}

export class WidgetTagOutputReference extends cdktf.ComplexObject {
  // key - computed: false, optional: true, required: false
  private _key?: string;
  public get key() {
    return this.getStringAttribute('key');
  }
}

export class WidgetTagList extends cdktf.ComplexList {
  public get(index: number): WidgetTagOutputReference {
    return new WidgetTagOutputReference(this.terraformResource, this.terraformAttribute, index, this.wrapsSet);
  }
}

export class WidgetStatusOutputReference extends cdktf.ComplexObject {
  // phase - computed: true, optional: false, required: false
  public get phase() {
    return this.getStringAttribute('phase');
  }
}

export class WidgetStatusList extends cdktf.ComplexList {
  public get(index: number): WidgetStatusOutputReference {
    return new WidgetStatusOutputReference(this.terraformResource, this.terraformAttribute, index, this.wrapsSet);
  }
}

export class Widget extends cdktf.TerraformResource {
  public static readonly tfResourceType = "acme_widget";

  // ==========
  // ATTRIBUTES
  // ==========

  // name - computed: false, optional: false, required: true
  private _name?: string;
  public get name() {
    return this.getStringAttribute('name');
  }

  // id - computed: true, optional: true, required: false
  private _id?: string;
  public get id() {
    return this.getStringAttribute('id');
  }

  // aliases - computed: false, optional: true, required: false
  private _aliases?: string[];
  public get aliases() {
    return cdktf.Fn.tolist(this.getListAttribute('aliases'));
  }

  // status - computed: true, optional: false, required: false
  private _status = new WidgetStatusList(this, "status", false);
  public get status() {
    return this._status;
  }

  // part - computed: false, optional: false, required: true
  private _part = new WidgetPartOutputReference(this, "part");
  public get part() {
    return this._part;
  }

  // tag - computed: false, optional: true, required: false
  private _tag = new WidgetTagList(this, "tag", true);
  public get tag() {
    return this._tag;
  }

  // =========
  // SYNTHESIS
  // =========

  protected synthesizeHclAttributes(): { [name: string]: any } {
    const attrs = {
      name: {
        value: cdktf.stringToHclTerraform(this._name),
        isBlock: false,
        type: "simple",
        storageClassType: "string",
      },
      id: {
        value: cdktf.stringToHclTerraform(this._id),
        isBlock: false,
        type: "simple",
        storageClassType: "string",
      },
      aliases: {
        value: cdktf.listMapperHcl(cdktf.stringToHclTerraform, false)(this._aliases),
        isBlock: false,
        type: "set",
        storageClassType: "stringList",
      },
      part: {
        value: widgetPartToHclTerraform(this._part.internalValue),
        isBlock: true,
        type: "list",
        storageClassType: "WidgetPartList",
      },
      tag: {
        value: cdktf.listMapperHcl(widgetTagToHclTerraform, true)(this._tag.internalValue),
        isBlock: true,
        type: "set",
        storageClassType: "WidgetTagList",
      },
    };
    return attrs;
  }
}

export class AcmeProvider extends cdktf.TerraformProvider {
  // endpoint - computed: false, optional: true, required: false
  private _endpoint?: string;

  // alias - computed: false, optional: true, required: false
  private _alias?: string;

  protected synthesizeHclAttributes(): { [name: string]: any } {
    const attrs = {
      endpoint: {
        value: cdktf.stringToHclTerraform(this._endpoint),
        isBlock: false,
        type: "simple",
        storageClassType: "string",
      },
      alias: {
        value: cdktf.stringToHclTerraform(this._alias),
        isBlock: false,
        type: "simple",
        storageClassType: "string",
      },
    };
    return attrs;
  }
}
"""


def test_cdktf_reader_gives_names_nesting_types_and_flags() -> None:
    schema = cdktf.extract_provider([[TS]])
    assert schema["provider"]["block"]["attributes"] == {"endpoint": {"type": "string", "optional": True}}
    block = schema["resource_schemas"]["acme_widget"]["block"]
    assert block["attributes"] == {
        "aliases": {"type": ["set", "string"], "optional": True},
        "id": {"type": "string", "optional": True, "computed": True},
        "name": {"type": "string", "required": True},
        "status": {"type": ["list", ["object", {"phase": "string"}]], "computed": True},
    }
    part = block["block_types"]["part"]
    # Required block cdktf holds as one object: list nesting, exactly one item.
    assert (part["nesting_mode"], part["min_items"], part["max_items"]) == ("list", 1, 1)
    assert part["block"]["attributes"] == {"size": {"type": "number", "required": True}}
    tag = block["block_types"]["tag"]
    assert tag["nesting_mode"] == "set" and "max_items" not in tag


def test_cdktf_storage_types() -> None:
    assert cdktf.storage_type("set", "stringList") == ["set", "string"]
    assert cdktf.storage_type("list", "numberListList") == ["list", ["list", "number"]]
    assert cdktf.storage_type("map", "stringMapMap") == ["map", ["map", "string"]]
    assert cdktf.storage_type("list", "WidgetPartList") is None


# --- SDKv2 reader ---------------------------------------------------------------------------

GO = """
package acme

func Provider() *schema.Provider {
	return &schema.Provider{
		Schema: map[string]*schema.Schema{
			"url": {Type: schema.TypeString, Required: true},
		},
		ResourcesMap: map[string]*schema.Resource{
			"acme_cluster": resourceCluster(),
		},
	}
}

func nodeFields() map[string]*schema.Schema {
	s := map[string]*schema.Schema{
		"role": {
			Type:     schema.TypeString,
			Optional: true,
		},
		"labels": {
			Type:     schema.TypeMap,
			Optional: true,
			Elem:     &schema.Schema{Type: schema.TypeString},
		},
	}
	return forceNewAll(s)
}

func resourceCluster() *schema.Resource {
	return &schema.Resource{
		Create: create,
		// Update: update,
		Timeouts: &schema.ResourceTimeout{
			Create: schema.DefaultTimeout(time.Minute),
		},
		Schema: map[string]*schema.Schema{
			"name": {Type: schema.TypeString, Required: true, ForceNew: true},
			"port": {Type: schema.TypeInt, Optional: true, Computed: true},
			"kubeconfig": {Type: schema.TypeString, Computed: true, Sensitive: true},
			"node": {
				Type:     schema.TypeList,
				Optional: true,
				MaxItems: 3,
				Elem: &schema.Resource{Schema: nodeFields()},
			},
			"endpoints": {
				Type:     schema.TypeList,
				Computed: true,
				Elem: &schema.Resource{Schema: map[string]*schema.Schema{
					"host": {Type: schema.TypeString, Computed: true},
				}},
			},
			"patches": {
				Type: schema.TypeList,
				Optional: true,
				Elem: &schema.Schema{
					Type: schema.TypeString,
					DiffSuppressFunc: func(k, old, new string, d *schema.ResourceData) bool { return old == new },
				},
			},
		},
	}
}
"""


def test_sdkv2_reader_presents_the_schema_as_terraform_does() -> None:
    schema, skipped = sdkv2.extract_provider(GO, "Provider")
    assert skipped == []
    assert schema["provider"]["block"]["attributes"] == {"url": {"type": "string", "required": True}}
    block = schema["resource_schemas"]["acme_cluster"]["block"]
    attrs = block["attributes"]
    assert attrs["id"] == {"type": "string", "optional": True, "computed": True}  # added by the SDK
    assert attrs["port"] == {"type": "number", "optional": True, "computed": True}
    assert attrs["kubeconfig"] == {"type": "string", "computed": True, "sensitive": True}
    assert attrs["patches"] == {"type": ["list", "string"], "optional": True}
    # A read-only nested resource is an attribute of object type, as the SDK presents it.
    assert attrs["endpoints"] == {"type": ["list", ["object", {"host": "string"}]], "computed": True}
    node = block["block_types"]["node"]
    assert node["max_items"] == 3 and node["nesting_mode"] == "list"
    assert node["block"]["attributes"]["labels"] == {"type": ["map", "string"], "optional": True}
    assert block["block_types"]["timeouts"]["nesting_mode"] == "single"


# --- the stored files -----------------------------------------------------------------------


def _provider(source: str, version: str) -> dict[str, Any]:
    doc = read_document(schema_file(SCHEMAS, source, version))
    assert doc["format_version"] == "1.0"
    (key,) = doc["provider_schemas"]
    assert key == f"registry.terraform.io/{source}"
    schema: dict[str, Any] = doc["provider_schemas"][key]
    return schema


def test_every_pinned_provider_is_stored_whole_and_canonical() -> None:
    lock = load_lockfile(LOCKFILE)
    for pin in lock.providers.values():
        path = schema_file(SCHEMAS, pin.source, pin.version)
        doc = read_document(path)
        # Canonical bytes: a regeneration that changes no fact changes no byte.
        assert encode(doc) == path.read_bytes()
        assert doc["provider_schemas"], path
    assert sum(p.stat().st_size for p in SCHEMAS.glob("*.json.gz")) < 5_000_000


@pytest.mark.parametrize(
    ("source", "version", "resources", "data_sources"),
    [
        ("hashicorp/helm", "2.17.0", 1, 1),
        ("hashicorp/kubernetes", "2.35.1", 82, 26),
        ("hashicorp/random", "3.6.3", 8, 0),
        ("hashicorp/tls", "4.0.6", 4, 2),
        ("kreuzwerker/docker", "3.0.2", 10, 5),
        ("tehcyx/kind", "0.7.0", 1, 0),
        ("alekc/kubectl", "2.1.3", 2, 4),
        ("keycloak/keycloak", "5.1.1", 89, 15),
        # The cloud providers engineer `cloud` pins: whole, not trimmed to what stages use.
        ("hashicorp/aws", "6.25.0", 1581, 630),
        ("hashicorp/google", "6.50.0", 1096, 373),
        ("hashicorp/azurerm", "4.55.0", 1127, 399),
    ],
)
def test_whole_provider_is_stored(source: str, version: str, resources: int, data_sources: int) -> None:
    schema = _provider(source, version)
    assert (len(schema["resource_schemas"]), len(schema["data_source_schemas"])) == (resources, data_sources)


def test_stored_facts_match_the_provider_docs() -> None:
    helm = _provider("hashicorp/helm", "2.17.0")
    release = helm["resource_schemas"]["helm_release"]["block"]
    assert release["attributes"]["chart"] == {"type": "string", "required": True}
    assert release["attributes"]["values"] == {"type": ["list", "string"], "optional": True}
    assert release["block_types"]["set"]["nesting_mode"] == "set"
    assert release["attributes"]["metadata"]["computed"] is True
    # helm 2.x: `kubernetes` is a block of the provider (3.x made it an attribute).
    assert helm["provider"]["block"]["block_types"]["kubernetes"]["max_items"] == 1
    k8s = _provider("hashicorp/kubernetes", "2.35.1")
    meta = k8s["resource_schemas"]["kubernetes_namespace"]["block"]["block_types"]["metadata"]
    assert (meta["min_items"], meta["max_items"]) == (1, 1)
    assert meta["block"]["attributes"]["uid"] == {"type": "string", "computed": True}
    kind = _provider("tehcyx/kind", "0.7.0")["resource_schemas"]["kind_cluster"]["block"]
    assert kind["block_types"]["kind_config"]["max_items"] == 1
    assert kind["attributes"]["kubeconfig_path"] == {"type": "string", "optional": True, "computed": True}
    realm = _provider("keycloak/keycloak", "5.1.1")["resource_schemas"]["keycloak_realm"]["block"]
    assert realm["attributes"]["realm"]["required"] is True
    manifest = _provider("alekc/kubectl", "2.1.3")["resource_schemas"]["kubectl_manifest"]["block"]
    assert manifest["attributes"]["yaml_body"]["required"] is True


def test_stored_files_are_gzip_of_plain_json() -> None:
    for path in SCHEMAS.glob("*.json.gz"):
        json.loads(gzip.decompress(path.read_bytes()))


# --- the echo provider's planning ------------------------------------------------------------

BLOCK: dict[str, Any] = {
    "attributes": {
        "name": {"type": "string", "required": True},
        "id": {"type": "string", "optional": True, "computed": True},
        "status": {"type": ["list", ["object", {"ip": "string"}]], "computed": True},
    },
    "block_types": {
        "meta": {
            "nesting_mode": "list",
            "block": {"attributes": {"uid": {"type": "string", "computed": True}}},
        }
    },
}


def test_plan_marks_unset_computed_attributes_unknown() -> None:
    planned = mark_computed({"name": "x", "id": None, "status": None, "meta": [{"uid": None}]}, BLOCK)
    assert planned["name"] == "x"
    assert planned["id"] is Unknown and planned["status"] is Unknown
    assert planned["meta"][0]["uid"] is Unknown
    assert mark_computed({"name": "x", "id": "given", "status": None, "meta": []}, BLOCK)["id"] == "given"


def test_data_source_read_fills_placeholders_that_can_be_indexed() -> None:
    read = mark_computed({"name": "x", "id": None, "status": None, "meta": []}, BLOCK, fill=True)
    assert read["status"] == [{"ip": ""}] and read["id"] == ""
    assert placeholder({"type": ["map", "string"]}) == {}


def test_read_only_attributes_set_in_config_are_found() -> None:
    assert read_only_set({"name": "x", "meta": [{"uid": "u"}], "status": None}, BLOCK, []) == [
        ["meta", 0, "uid"]
    ]


def test_terraform_diagnostics_become_one_line_each() -> None:
    from stagegraph.checks.providers import diagnostics

    events = [
        {"type": "version", "terraform": "1.11.0"},
        {
            "type": "diagnostic",
            "diagnostic": {
                "severity": "error",
                "summary": "Missing required argument",
                "detail": 'The argument "chart" is required,\nbut no definition was found.',
                "range": {"filename": "main.tf.json", "start": {"line": 12}},
            },
        },
        {"type": "diagnostic", "diagnostic": {"severity": "warning", "summary": "Deprecated"}},
    ]
    stdout = "\n".join(json.dumps(e) for e in events) + "\n42\nnot json\n"
    assert diagnostics(stdout, "", 1) == [
        'main.tf.json:12: Missing required argument: The argument "chart" is required, but no definition was found.'
    ]
    assert diagnostics("", "Error: something odd\n", 1) == ["terraform exited 1: Error: something odd"]
    assert diagnostics("", "", 0) == []
