"""`aiassistant-operator render`: the objects the operator would create, offline (like `helm template`).

Reads AIAssistant resources from files, directories or stdin, validates and renders each with the
same code the operator runs (render.py) and the operator settings from the env, and prints
multi-document YAML. Nothing is printed unless every assistant is valid; then exit 1 with the
field-named messages on stderr. Offline there is no uid, so there are no ownerReferences.
An engine model its provider retired renders (it still answers) with a warning on stderr naming the
replacement, the words the operator puts in ModelValid (reason ModelRetired); the exit stays 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from aiassistant_contract.assistant import API_VERSION, KIND
from aiassistant_contract.engines import retirement_warning
from aiassistant_contract.errors import SpecError

from .render import render
from .settings import Settings, SettingsError

PROG = "aiassistant-operator render"


class InputError(Exception):
    """A file that cannot be read or parsed; the message names it."""


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's config.json) as literal blocks; no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(objects: Iterable[Mapping[str, Any]], source: str | None = None) -> str:
    """Multi-document YAML, each document after `---` (and a `# Source:` line, as helm does)."""
    out = []
    for obj in objects:
        head = f"---\n# Source: {source}\n" if source else "---\n"
        out.append(head + yaml.dump(dict(obj), Dumper=_Dumper, sort_keys=False, width=120))
    return "".join(out)


def _files(name: str) -> list[tuple[str, str]]:
    """(label, text) of a file, of each *.yaml/*.yml in a directory, or of stdin for '-'."""
    if name == "-":
        return [("<stdin>", sys.stdin.read())]
    path = Path(name)
    paths = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
    files = []
    for p in paths:
        try:
            files.append((str(p), p.read_text()))
        except OSError as err:
            raise InputError(f"{p}: cannot read ({err.strerror})") from None
    return files


def load_assistants(names: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """(source label, AIAssistant document) for every AIAssistant in the inputs, in order."""
    assistants = []
    for name in names:
        for label, text in _files(name):
            try:
                documents = list(yaml.safe_load_all(text))
            except yaml.YAMLError as err:
                raise InputError(f"{label}: not valid YAML: {err}") from None
            for doc in documents:
                if not isinstance(doc, dict) or doc.get("kind") != KIND:
                    continue  # Secrets and other kinds: not ours to render
                if doc.get("apiVersion") != API_VERSION:
                    raise InputError(
                        f"{label}: {KIND} {doc.get('metadata', {}).get('name', '?')}: apiVersion "
                        f"{doc.get('apiVersion')!r} is not {API_VERSION}"
                    )
                assistants.append((label, doc))
    return assistants


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        settings = Settings.from_env()
        assistants = load_assistants(args.filenames)
    except (SettingsError, InputError) as error:
        print(f"{PROG}: {error}", file=err)
        return 1
    if not assistants:
        print(f"{PROG}: no {KIND} in {', '.join(args.filenames)}", file=err)
        return 1

    documents, errors = [], []
    for label, doc in assistants:
        metadata = dict(doc.get("metadata") or {})
        metadata.setdefault("namespace", args.namespace)
        try:
            objects = render({**doc, "metadata": metadata}, settings)
        except SpecError as error:
            errors.append(f"{label}: {KIND} {metadata['namespace']}/{metadata.get('name', '?')}: {error}")
            continue
        documents.append(dump_yaml(objects, source=f"{label} ({KIND} {metadata['name']})"))
        warning = retirement_warning(str(doc["spec"]["engineModel"]), settings.registry())
        if warning:
            print(
                f"{PROG}: warning: {label}: {KIND} {metadata['namespace']}/{metadata['name']}: "
                f"spec.engineModel: {warning}",
                file=err,
            )
    if errors:
        for line in errors:
            print(f"{PROG}: {line}", file=err)
        return 1
    out.write("".join(documents))
    return 0


def main(args: argparse.Namespace) -> int:
    return run(args, sys.stdout, sys.stderr)
