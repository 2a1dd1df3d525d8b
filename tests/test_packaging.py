"""What the distribution and its tooling promise: honest project URLs, pinned tools, extras
that install what their commands need."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from turnstore.conformance.__main__ import TEST_TOOLS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest needs tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_docs_site_links_only_to_an_address_the_package_metadata_lists() -> None:
    # The package has no public home yet (pyproject.toml says why): the site must not
    # invent one either. A repo_url is fine once [project.urls] names the same address.
    listed = set(pyproject()["project"].get("urls", {}).values())
    mkdocs = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    linked = re.findall(r"^(?:repo_url|site_url):\s*(\S+)", mkdocs, flags=re.MULTILINE)
    assert [url for url in linked if url.strip("'\"") not in listed] == []


def test_every_tool_the_scripts_install_comes_at_its_pin() -> None:
    # scripts/test-newest is the one run that takes the newest releases, on purpose.
    unpinned = [
        f"{script.name}: {line.strip()}"
        for script in sorted((ROOT / "scripts").iterdir())
        if script.name != "test-newest"
        for line in script.read_text(encoding="utf-8").splitlines()
        if "pip install" in line
        and not line.lstrip().startswith("#")
        and " -c " not in line
        and '"${pin[@]}"' not in line
    ]
    assert unpinned == []


def requirements(extra: str) -> dict[str, str]:
    parsed = [Requirement(text) for text in pyproject()["project"]["optional-dependencies"][extra]]
    return {requirement.name: str(requirement.specifier) for requirement in parsed}


def test_the_conformance_extra_installs_what_the_command_checks_at_the_dev_versions() -> None:
    conformance = requirements("conformance")
    assert set(conformance) == set(TEST_TOOLS.values())
    dev = requirements("dev")
    assert conformance == {name: dev[name] for name in conformance}


def test_every_benchmark_module_runs_from_the_package_layout() -> None:
    # `python -m benchmarks.X` from the root finds `tests` and `turnstore` as packages.
    editing = [
        path.name
        for path in sorted((ROOT / "benchmarks").glob("*.py"))
        if "sys.path" in path.read_text(encoding="utf-8")
    ]
    assert editing == []
