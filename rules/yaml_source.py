"""Safe YAML reading that remembers where every key came from.

Both rule files and the settings file are written by people, so an error must
name the file, line and column of the offending key, not a path into a dict.
Anchors and aliases are refused outright (they enable "billion laughs" bombs and
nothing in our files needs them); oversize files are refused before parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 32  # rules nest a few levels (composites of composites); 32 is generous


@dataclass(frozen=True, order=True)
class SourceError:
    """One problem in a YAML file, positioned (1-based line and column)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class YamlFileError(ValueError):
    """Raised with every error found in a file; str() gives one per line."""

    def __init__(self, errors: Sequence[SourceError]) -> None:
        self.errors = sorted(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


def load_yaml(text: str, filename: str) -> Any:
    """Parse YAML text into ruamel's commented containers (which keep positions)."""
    if len(text.encode()) > MAX_YAML_BYTES:
        raise YamlFileError([SourceError(filename, 1, 1, f"file larger than {MAX_YAML_BYTES} bytes")])
    yaml = YAML(typ="rt")
    depth = 0
    try:
        for event in yaml.parse(text):
            mark = event.start_mark
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
                raise YamlFileError([SourceError(
                    filename, mark.line + 1, mark.column + 1,
                    "YAML anchors and aliases are not allowed")])
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise YamlFileError([SourceError(
                        filename, mark.line + 1, mark.column + 1,
                        f"nested more than {MAX_YAML_DEPTH} levels deep")])
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
        return yaml.load(text)
    except RecursionError as exc:  # a nesting the event check did not see coming
        raise YamlFileError([SourceError(filename, 1, 1, "nested too deeply")]) from exc
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlFileError([SourceError(filename, line, column, f"YAML syntax: {exc.problem}")]) from exc
    except YAMLError as exc:
        raise YamlFileError([SourceError(filename, 1, 1, f"YAML syntax: {exc}")]) from exc


def load_yaml_file(path: Path) -> Any:
    return load_yaml(path.read_text(encoding="utf-8"), str(path))


def to_plain(node: Any) -> Any:
    """ruamel containers to plain dicts/lists, for pydantic."""
    if isinstance(node, dict):
        return {str(key): to_plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [to_plain(value) for value in node]
    return node


def locate(root: Any, loc: Sequence[int | str]) -> tuple[int, int, list[int | str]]:
    """Line/column (1-based) of the deepest node on `loc` present in the document.

    Also returns `loc` without the parts pydantic inserts for tagged unions
    (e.g. the 'detection' in condition.detection.for), which are not in the file.
    """
    node, line, column = root, 1, 1
    if isinstance(root, CommentedMap | CommentedSeq):
        line, column = root.lc.line + 1, root.lc.col + 1
    kept: list[int | str] = []
    for index, part in enumerate(loc):
        is_last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            key_line, key_column = node.lc.key(part)
            line, column, node = key_line + 1, key_column + 1, node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            item_line, item_column = node.lc.item(part)
            line, column, node = item_line + 1, item_column + 1, node[part]
        elif isinstance(node, CommentedMap) and not is_last and isinstance(part, str):
            continue  # a union tag or validator name, not a key in the file
        else:
            node = None
        kept.append(part)
    return line, column, kept


def position_of(root: Any, loc: Sequence[int | str]) -> tuple[int, int]:
    line, column, _ = locate(root, loc)
    return line, column


def validation_errors(
    error: ValidationError, root: Any, filename: str, prefix: Sequence[int | str] = ()
) -> list[SourceError]:
    """Turn pydantic's errors into positioned, plain-words messages."""
    return positioned_errors(error.errors(include_url=False), root, filename, prefix)


def positioned_errors(
    items: Sequence[Any], root: Any, filename: str, prefix: Sequence[int | str] = ()
) -> list[SourceError]:
    """Like validation_errors, for a chosen subset of pydantic's error items."""
    result = []
    for item in items:
        line, column, kept = locate(root, [*prefix, *item["loc"]])
        if item["type"] != "missing" and len(kept) > len(prefix) and _is_union_tag(root, kept):
            kept = kept[:-1]  # a model-level error in a tagged union ends with the tag, not a key
        where = ".".join(str(part) for part in kept[len(prefix):]) or "(top level)"
        result.append(SourceError(filename, line, column, f"{where}: {_plain(item)}"))
    return result


def _is_union_tag(root: Any, loc: Sequence[int | str]) -> bool:
    """Whether the last part of `loc` names a union member rather than a key of the file."""
    node = root
    for part in loc[:-1]:
        in_map = isinstance(node, CommentedMap) and part in node
        in_list = isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_map or in_list):
            return False
        node = node[part]
    last = loc[-1]
    return isinstance(node, CommentedMap) and isinstance(last, str) and last not in node \
        and node.get("type") == last


def _plain(item: Any) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return f"missing {item.get('ctx', {}).get('discriminator', 'type')} (it says which kind this is)"
    if kind == "union_tag_invalid":
        expected = item.get("ctx", {}).get("expected_tags", "")
        return f"unknown type {item['input']!r}; expected one of {expected}"
    return str(item["msg"])
