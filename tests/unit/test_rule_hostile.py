"""Hostile rule files are refused with a clear error and never executed."""

from __future__ import annotations

import pytest

from rules.loader import parse_rules
from rules.yaml_source import MAX_YAML_BYTES, YamlFileError

VALID = "id: ok\ntitle: t\ncondition: {type: detection, classes: [person]}\n"


def refused(text: str) -> list[str]:
    with pytest.raises(YamlFileError) as info:
        parse_rules(text, "evil.yaml")
    return [str(e) for e in info.value.errors]


def test_billion_laughs_is_refused_before_expansion() -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    assert any("anchors and aliases" in m for m in refused(bomb))


def test_huge_files_are_refused_unread(tmp_path: object) -> None:
    text = VALID + "# " + "x" * MAX_YAML_BYTES + "\n"
    assert any("larger than" in m for m in refused(text))


def test_python_tags_are_never_constructed() -> None:
    messages = refused("id: !!python/object/apply:os.system ['touch /tmp/pwned']\ntitle: t\n"
                       "condition: {type: detection, classes: [x]}\n")
    assert messages and all(m.startswith("evil.yaml:") for m in messages)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    flow = "id: x\ntitle: t\ncondition: " + "[" * 5000 + "]" * 5000 + "\n"
    block = "id: x\ntitle: t\ncondition:\n  " + "- " * 5000 + "x\n"
    for text in (flow, block):
        assert any("levels deep" in m for m in refused(text))


@pytest.mark.parametrize(("snippet", "expected"), [
    ("condition: {type: detection, classes: [person], min_count: three}", "condition.min_count"),
    ("condition: {type: detection, classes: person}", "condition.classes"),
    ("condition: {type: threshold, field: pm25, above: 5, for: yesterday}", "condition.for"),
    ("condition: {type: detection, classes: [a]}\nseverity: apocalyptic", "severity"),
    ("condition: {type: detection, classes: [a]}\nrealert: {every: 0}", "realert.every"),
    ("condition: {type: detection, classes: [a]}\nsources: {inside: [[1, 2]]}", "sources.inside"),
    ("condition: {type: frequency, count: 2, within: 1m, of: {type: nope}}", "condition"),
    ("condition: {type: detection, classes: [a]}\nschedule: {windows: [{start: '25:00'}]}", "schedule"),
])
def test_wrong_types_name_the_key(snippet: str, expected: str) -> None:
    messages = refused(f"id: x\ntitle: t\n{snippet}\n")
    assert any(f": {expected}" in m for m in messages), messages
