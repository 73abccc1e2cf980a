"""Dependencies point one way: citywatch imports the domains, a domain never imports citywatch,
and each domain imports only the event types upstream of it (docs/architecture.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"ingest", "detectors", "rules", "notifier", "storage", "citywatch"}
# ingest.events holds the base Event contract every domain shares.
ALLOWED = {
    "ingest": set(),
    "detectors": {"ingest"},
    "rules": {"ingest", "detectors"},
    "notifier": {"ingest", "rules"},
    "storage": {"ingest", "detectors", "rules", "notifier"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in PROJECT and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_domain_imports_only_upstream_types(package: str) -> None:
    illegal = {k: v for k, v in imported_packages(package).items() if k not in ALLOWED[package]}
    assert illegal == {}


def test_domains_know_nothing_of_faust() -> None:
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            assert "import faust" not in path.read_text(), path
