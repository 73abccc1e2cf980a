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

from rules.loader import load_rule_file, rule_files
from rules.model import Rule
from rules.yaml_source import SourceError, YamlFileError


@dataclass(frozen=True)
class ReloadResult:
    rules: list[Rule]
    changed_files: list[Path]
    errors: list[SourceError] = field(default_factory=list)


class RuleDirectoryWatcher:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = list(paths)
        self._digests: dict[Path, str] = {}
        self._good: dict[Path, list[Rule]] = {}

    def poll(self) -> ReloadResult | None:
        """None when nothing changed since the last poll, else the new complete rule set."""
        current = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in rule_files(self.paths)
                   if path.is_file()}
        changed = [p for p, digest in current.items() if self._digests.get(p) != digest]
        removed = [p for p in self._digests if p not in current]
        if not changed and not removed:
            return None
        errors: list[SourceError] = []
        for path in changed:
            try:
                self._good[path] = load_rule_file(path)
            except YamlFileError as exc:
                errors.extend(exc.errors)  # the previous version of this file keeps running
            except OSError as exc:
                errors.append(SourceError(str(path), 1, 1, f"cannot read: {exc.strerror}"))
            self._digests[path] = current[path]
        for path in removed:
            self._digests.pop(path, None)
            self._good.pop(path, None)
        return ReloadResult(self._unique(errors), [*changed, *removed], errors)

    def _unique(self, errors: list[SourceError]) -> list[Rule]:
        seen: dict[str, Path] = {}
        rules: list[Rule] = []
        for path in sorted(self._good):
            for rule in self._good[path]:
                if rule.id in seen:
                    message = f"rule id {rule.id!r} already defined in {seen[rule.id]}; ignored"
                    errors.append(SourceError(str(path), 1, 1, message))
                    continue
                seen[rule.id] = path
                rules.append(rule)
        return rules
