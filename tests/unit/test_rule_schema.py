import json
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML

from notifier.channel_registry import CHANNEL_ADDRESSES
from rules.loader import load_rule_file
from rules.schema import rule_file_schema, rule_file_schema_json

ROOT = Path(__file__).resolve().parents[2]


def test_published_schema_is_current() -> None:
    published = ROOT / "schemas" / "rule-file.schema.json"
    hint = f"regenerate it: citywatch rules schema --output {published}"
    assert published.read_text() == rule_file_schema_json(list(CHANNEL_ADDRESSES)), hint


def errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(rule_file_schema(list(CHANNEL_ADDRESSES)))
    return [error.message for error in validator.iter_errors(document)]


def test_schema_accepts_the_example_rules_and_rejects_typos() -> None:
    examples = sorted((ROOT / "examples").glob("*/*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        assert errors(json.loads(json.dumps(YAML(typ="safe").load(path.read_text())))) == [], path
        load_rule_file(path)  # and the models agree
    condition: dict[str, Any] = {"type": "detection", "classes": ["person"], "for": "5s"}
    rule: dict[str, Any] = {"id": "x", "title": "t", "condition": condition}
    assert errors(rule) == [] and errors([rule, rule]) == []
    assert errors({**rule, "condition": {**condition, "min_cuont": 3}})
    assert errors({**rule, "condition": {**condition, "for": "soon"}})
