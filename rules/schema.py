"""The published JSON Schema of a rule file (one rule or a list), generated from the models.

Editors (VS Code's YAML extension, IntelliJ) use it for completion and inline errors,
so rule authors see a typo before `citywatch rules check` does.
"""

from __future__ import annotations

import json
from typing import Any

from rules.model import Rule

SCHEMA_ID = "https://citywatch.example.org/schemas/rule-file.schema.json"


def rule_file_schema() -> dict[str, Any]:
    rule = Rule.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    definitions = rule.pop("$defs", {})
    definitions["Rule"] = rule
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "CityWatch rule file",
        "description": "One alert rule, or a list of rules.",
        "anyOf": [{"$ref": "#/$defs/Rule"}, {"type": "array", "items": {"$ref": "#/$defs/Rule"}}],
        "$defs": definitions,
    }


def rule_file_schema_json() -> str:
    return json.dumps(rule_file_schema(), indent=2, sort_keys=True) + "\n"
