"""Load and validate rule files (one rule or a list of rules per file)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedSeq

from rules.model import Rule
from rules.yaml_source import (
    SourceError,
    YamlFileError,
    load_yaml,
    position_of,
    to_plain,
    validation_errors,
)

RULE_SUFFIXES = (".yaml", ".yml")

Problem = tuple[Sequence[int | str], str]
"""Where in one rule (its keys, e.g. ("notify", 0, "recipient")) and what is wrong."""
RuleCheck = Callable[[Rule], Iterable[Problem]]
"""What a valid rule must also satisfy where it will run (recipients, channels and models
that exist in the settings): the composition root knows, the rule language does not."""


def parse_rules(text: str, filename: str, check: RuleCheck | None = None) -> list[Rule]:
    """Every rule in `text`; raises YamlFileError listing every problem with its position,
    including what `check` finds in the rules that are valid on their own."""
    document = load_yaml(text, filename)
    if document is None:
        return []
    items = document if isinstance(document, CommentedSeq) else [document]
    rules: list[Rule] = []
    errors: list[SourceError] = []
    for index, item in enumerate(items):
        prefix: list[int | str] = [index] if isinstance(document, CommentedSeq) else []
        if not isinstance(item, dict):
            line, column = position_of(document, prefix)
            errors.append(SourceError(filename, line, column, "a rule must be a mapping of keys"))
            continue
        try:
            rule = Rule.model_validate(to_plain(item))
        except ValidationError as exc:
            errors.extend(validation_errors(exc, document, filename, prefix))
            continue
        rules.append(rule)
        for where, message in check(rule) if check is not None else ():
            line, column = position_of(document, [*prefix, *where])
            errors.append(SourceError(filename, line, column, f"rule {rule.id}: {message}"))
    errors.extend(_duplicates(rules, document, filename))
    if errors:
        raise YamlFileError(errors)
    return rules


def load_rule_file(path: Path, check: RuleCheck | None = None) -> list[Rule]:
    return parse_rules(path.read_text(encoding="utf-8"), str(path), check)


def rule_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES))
        else:
            found.append(path)
    return found


def load_rules(paths: Iterable[Path], check: RuleCheck | None = None) -> tuple[list[Rule], list[SourceError]]:
    """All valid rules under `paths`, and every error; a bad file does not hide good ones."""
    loaded: list[tuple[Path, list[Rule]]] = []
    errors: list[SourceError] = []
    for path in rule_files(paths):
        try:
            loaded.append((path, load_rule_file(path, check)))
        except YamlFileError as exc:
            errors.extend(exc.errors)
        except OSError as exc:
            errors.append(SourceError(str(path), 1, 1, f"cannot read: {exc.strerror}"))
        except UnicodeDecodeError as exc:
            errors.append(SourceError(str(path), 1, 1, f"not UTF-8 text (byte {exc.start}): save as UTF-8"))
    rules, duplicates = unique_across_files(loaded)
    return rules, errors + duplicates


def unique_across_files(
    files: Iterable[tuple[Path, list[Rule]]]
) -> tuple[list[Rule], list[SourceError]]:
    """The rules of several files, the first definition of each id winning; later ones are errors."""
    seen: dict[str, Path] = {}
    rules: list[Rule] = []
    errors: list[SourceError] = []
    for path, file_rules in files:
        for rule in file_rules:
            if rule.id in seen:
                message = f"rule id {rule.id!r} already defined in {seen[rule.id]}"
                errors.append(SourceError(str(path), 1, 1, message))
                continue
            seen[rule.id] = path
            rules.append(rule)
    return rules, errors


def _duplicates(rules: list[Rule], document: object, filename: str) -> list[SourceError]:
    seen: set[str] = set()
    errors = []
    for index, rule in enumerate(rules):
        if rule.id in seen:
            line, column = position_of(document, [index, "id"])
            errors.append(SourceError(filename, line, column, f"duplicate rule id {rule.id!r}"))
        seen.add(rule.id)
    return errors
