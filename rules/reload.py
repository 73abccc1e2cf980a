"""Hot reload of rule files: a changed file is validated and applied, a broken one is refused.

The watcher remembers the last good rules of every file. When a file changes it is
parsed again: if it is valid its rules replace the old ones; if not, the errors are
reported and the previous version of that file keeps running. A deleted file's rules
go away. Nothing restarts; the engine keeps the state of rules whose id did not change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rules.loader import parse_rules, rule_files, unique_across_files
from rules.model import Rule
from rules.yaml_source import SourceError, YamlFileError


@dataclass(frozen=True)
class ReloadResult:
    rules: list[Rule]
    changed_files: list[Path]
    errors: list[SourceError] = field(default_factory=list)
    accepted: dict[str, str | None] = field(default_factory=dict)
    """Changed files that are valid, by name (None: removed), to publish on the rules topic."""


class RuleDirectoryWatcher:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = list(paths)
        self._digests: dict[Path, str] = {}
        self._good: dict[Path, list[Rule]] = {}

    def name_of(self, path: Path) -> str:
        """A file's name on the rules topic: its path under the configured folder."""
        for root in self.paths:
            if root.is_dir() and path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return path.name

    def names(self) -> set[str]:
        return {self.name_of(path) for path in self._digests}

    def poll(self) -> ReloadResult | None:
        """None when nothing changed since the last poll, else the new complete rule set."""
        contents = {path: path.read_bytes() for path in rule_files(self.paths) if path.is_file()}
        current = {path: hashlib.sha256(data).hexdigest() for path, data in contents.items()}
        changed = [p for p, digest in current.items() if self._digests.get(p) != digest]
        removed = [p for p in self._digests if p not in current]
        if not changed and not removed:
            return None
        errors: list[SourceError] = []
        accepted: dict[str, str | None] = {}
        for path in changed:
            try:  # parse the bytes already read for the digest: one read per change
                text = contents[path].decode("utf-8")
                self._good[path] = parse_rules(text, str(path))
                accepted[self.name_of(path)] = text
            except YamlFileError as exc:
                errors.extend(exc.errors)  # the previous version of this file keeps running
            except UnicodeDecodeError as exc:
                errors.append(SourceError(str(path), 1, 1, f"not UTF-8 text: {exc.reason}"))
            self._digests[path] = current[path]
        for path in removed:
            self._digests.pop(path, None)
            self._good.pop(path, None)
            accepted[self.name_of(path)] = None
        rules, duplicates = unique_across_files(sorted(self._good.items()))
        return ReloadResult(rules, [*changed, *removed], errors + duplicates, accepted)
