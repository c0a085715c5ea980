"""Generate the AIAssistant CRD from the contract's pydantic models (aiassistant_contract.assistant,
the one source of the schema).

    python -m aiassistant_operator.crdgen            # rewrite both CRD files
    python -m aiassistant_operator.crdgen --check    # exit 1 if a committed file differs

pydantic emits JSON Schema 2020-12; a CRD wants a *structural* OpenAPI v3 schema. The conversion:
$refs inlined, `X | None` -> X (optional = not required), defaults moved into the description
(the apiserver would otherwise write them into every object), `additionalProperties: false` dropped
(the apiserver prunes unknown fields instead), a free-form dict -> x-kubernetes-preserve-unknown-fields,
JSON Schema's numeric exclusiveMinimum -> OpenAPI's boolean form. Every field must carry a
description (`kubectl explain` reads them): generation fails otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from aiassistant_contract.assistant import (
    GROUP,
    KIND,
    NAME_RULE,
    PLURAL,
    VERSION,
    AIAssistantSpec,
    AIAssistantStatus,
)

ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = (
    ROOT / "crds" / f"{PLURAL}.{GROUP}.yaml",
    ROOT / "charts" / "aiassistant-operator" / "crds" / f"{PLURAL}.{GROUP}.yaml",
)
HEADER = "# Generated from contract/aiassistant_contract/assistant.py by `python -m aiassistant_operator.crdgen`.\n# Do not edit by hand.\n"

DROPPED = {"title", "default", "$defs"}
# The Ready condition says why an assistant is not Ready: `kubectl get aia` shows it (-o wide: the message).
READY_REASON = '.status.conditions[?(@.type=="Ready")].reason'
READY_MESSAGE = '.status.conditions[?(@.type=="Ready")].message'


class SchemaError(ValueError):
    """The models cannot be expressed as a structural schema (e.g. a field lacks a description)."""


def _default_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _structural(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:  # inline; the field's own keys (description, default) win over the model's
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:  # `X | None`: optional is expressed by `required`, not by null
            del node["anyOf"]
            node = {**_structural(options[0], defs, path), **node}
        elif not node.get("x-kubernetes-int-or-string"):
            raise SchemaError(f"{path}: unions other than int-or-string cannot be structural")
        else:
            node["anyOf"] = [{"type": o["type"]} for o in options]
    out: dict[str, Any] = {}
    description = node.get("description")
    if description and "default" in node and node["default"] not in (None, "", [], {}):
        default = _default_text(node["default"])
        description = f"{description.rstrip('.')}. Default: {default}{'' if default.endswith('.') else '.'}"
    if description:
        out["description"] = " ".join(description.split())
    for key, value in node.items():
        if key in DROPPED or key == "description":
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _structural(value, defs, f"{path}.*")
            # False: dropped (the apiserver prunes unknown fields)
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """type and description first, nested schemas last: the file reads like `kubectl explain`."""
    last = ("properties", "additionalProperties", "items", "required")
    head = [k for k in ("type", "description") if k in node]
    tail = [k for k in last if k in node]
    middle = sorted(k for k in node if k not in head and k not in tail)
    return {k: node[k] for k in head + middle + tail}


class _NoAliasDumper(yaml.SafeDumper):
    """Repeated sub-schemas (e.g. every secretRef) written out in full: no YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _check_descriptions(node: dict[str, Any], path: str) -> None:
    if path == f"{KIND}.metadata":
        return  # ObjectMeta: described by Kubernetes itself
    if "description" not in node:
        raise SchemaError(f"{path}: no description (give the pydantic field a description)")
    for name, sub in node.get("properties", {}).items():
        _check_descriptions(sub, f"{path}.{name}")
    if node.get("items", {}).get("type") == "object":  # list elements that are objects, e.g. tools[]
        _check_descriptions(node["items"], f"{path}[]")


def model_schema(model: type[AIAssistantSpec] | type[AIAssistantStatus], path: str) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema = _structural(raw, raw.get("$defs", {}), path)
    _check_descriptions(schema, path)
    return schema


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    spec_schema = model_schema(AIAssistantSpec, "spec")
    status_schema = model_schema(AIAssistantStatus, "status")
    root = {
        "type": "object",
        "description": "An AI voice/text assistant: the operator runs it as Pipecat runner pods "
        "behind a Service (<name>-runner).",
        "required": ["spec"],
        # At the root, where CEL may read metadata.name: the children's names must be valid.
        "x-kubernetes-validations": [NAME_RULE],
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object."},
            "kind": {"type": "string", "description": "REST resource this object represents."},
            # The apiserver allows nothing on metadata but name/generateName (not even a description).
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    _check_descriptions(root, KIND)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["aia"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        # kubectl scale, and autoscalers (spec.autoscaling's HPA) targeting the assistant.
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Model", "type": "string", "jsonPath": ".spec.engineModel"},
                        {"name": "Target", "type": "string", "jsonPath": ".status.engineTarget"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                        {"name": "Reason", "type": "string", "jsonPath": READY_REASON},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                        {"name": "Message", "type": "string", "jsonPath": READY_MESSAGE, "priority": 1},
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def crd_yaml() -> str:
    return HEADER + yaml.dump(crd(), Dumper=_NoAliasDumper, sort_keys=False, width=100, allow_unicode=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aiassistant_operator.crdgen",
        description="Write the AIAssistant CRD from aiassistant_contract.assistant.",
    )
    parser.add_argument("--check", action="store_true", help="only check the files are up to date")
    args = parser.parse_args(argv)
    text = crd_yaml()
    stale = [path for path in CRD_FILES if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python -m aiassistant_operator.crdgen", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
