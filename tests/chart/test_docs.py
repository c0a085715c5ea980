"""docs/: the API reference is generated from the CRD and committed up to date; every doc page the
index links exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from scripts import gen_api_docs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_api_reference_is_generated_from_the_current_crd() -> None:
    if not gen_api_docs.CRD.exists():
        pytest.skip("CRD not landed yet")
    assert gen_api_docs.main(["--check"]) == 0, "run: python scripts/gen_api_docs.py"


def test_api_reference_documents_every_spec_and_status_field() -> None:
    crd = yaml.safe_load(gen_api_docs.CRD.read_text())
    text = gen_api_docs.generate(crd)
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    for path, schema in [
        *gen_api_docs.sections("spec", root["spec"]),
        *gen_api_docs.sections("status", root["status"]),
    ]:
        assert f"### `{path}`" in text
        for name in schema.get("properties", {}):
            assert f"| `{name}`" in text, f"{path}.{name} missing"


def test_index_links_resolve() -> None:
    index = (DOCS / "index.md").read_text()
    links = re.findall(r"\]\(([^)#:]+\.md)", index)
    assert len(links) >= 7, links
    for link in links:
        assert (DOCS / link).exists(), f"docs/index.md links to missing {link}"


def test_troubleshooting_covers_exactly_the_operators_condition_reasons() -> None:
    package = ROOT / "operator" / "aiassistant_operator"
    names = ("reconcile.py", "status.py", "keys.py", "access.py")
    handlers = "".join((package / name).read_text() for name in names)
    in_code = set(re.findall(r'"(?:True|False|Unknown)",\s*"([A-Za-z]+)"', handlers))
    page = (DOCS / "troubleshooting.md").read_text()
    in_docs = set(re.findall(r"^\| (?:`\w+`|any) \| `([A-Za-z]+)` \|", page, flags=re.MULTILINE))
    assert in_code, "no condition reasons found in reconcile.py/status.py/access.py"
    assert in_docs == in_code, f"undocumented: {in_code - in_docs}; not in the code: {in_docs - in_code}"


def test_metrics_page_names_real_metrics() -> None:
    sources = "".join(
        (ROOT / path).read_text()
        for path in ("runner/aiassistant_runner/metrics.py", "operator/aiassistant_operator/metrics.py")
    )
    defined = set(re.findall(r'"(aiassistant_[a-z_]+)"', sources))
    page = (DOCS / "metrics.md").read_text()
    documented = {re.sub(r"_(total|bucket)$", "", m) for m in re.findall(r"\b(aiassistant_[a-z_]+)", page)}
    assert documented - defined == set(), f"documented but not defined: {documented - defined}"
    assert defined - documented == set(), f"defined but not documented: {defined - documented}"
