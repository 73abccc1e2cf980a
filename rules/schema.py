"""The published JSON Schema of a rule file (one rule or a list), generated from the models.

Editors (VS Code's YAML extension, IntelliJ) use it for completion and inline errors,
so rule authors see a typo before `citywatch rules check` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rules.model import Rule

SCHEMA_ID = "https://citywatch.example.org/schemas/rule-file.schema.json"


def rule_file_schema(channels: Sequence[str] = ()) -> dict[str, Any]:
    """`channels`: the channel names that exist (the notifier's to say; the rule language
    takes any name, and `rules check` refuses unknown ones against the settings)."""
    rule = Rule.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    definitions = rule.pop("$defs", {})
    definitions["Rule"] = rule
    if channels:
        definitions["NotifyTarget"]["properties"]["channels"]["items"] = {"enum": sorted(channels)}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "CityWatch rule file",
        "description": "One alert rule, or a list of rules.",
        "anyOf": [{"$ref": "#/$defs/Rule"}, {"type": "array", "items": {"$ref": "#/$defs/Rule"}}],
        "$defs": definitions,
    }


def rule_file_schema_json(channels: Sequence[str] = ()) -> str:
    return json.dumps(rule_file_schema(channels), indent=2, sort_keys=True) + "\n"
