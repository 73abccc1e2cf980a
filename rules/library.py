"""The live rule set as the compacted `rules` topic carries it: rule files and silences.

Every worker reads the topic from its beginning and applies each message here. A rule
file is validated on arrival: a valid version replaces the file's rules, an invalid one is
refused with its errors and the previous version keeps running (each worker decides the
same, since each sees the same messages in the same order). Messages are keyed by file
name or silence id, so compaction keeps exactly the current set.

The rule folder is a seed, not a second source of truth: beside each file it published, the
topic keeps a `FolderSeed` (the digest of what the folder last sent for that name), so a
worker publishes a folder file only when the folder's own content changed, and a newer
version published from the CLI or the console is never reverted by a worker start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from rules.loader import parse_rules, unique_across_files
from rules.model import Rule
from rules.silences import Silence
from rules.yaml_source import SourceError, YamlFileError

MAX_RULE_FILE_BYTES = 1_000_000


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleFileVersion(_Message):
    """One version of one rule file; `content` None means the file was deleted."""

    kind: Literal["rule_file"] = "rule_file"
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}\.ya?ml$")
    content: str | None = Field(max_length=MAX_RULE_FILE_BYTES)
    author: str = Field(min_length=1, max_length=200)
    published_at: AwareDatetime
    comment: str = Field(default="", max_length=2000)
    origin: Literal["directory", "published"] = "published"

    @property
    def sha256(self) -> str:
        return hashlib.sha256((self.content or "").encode()).hexdigest() if self.content is not None else ""

    @property
    def key(self) -> str:
        return f"file:{self.name}"


class SilenceChange(_Message):
    """A silence set (`silence` given) or lifted (`silence` None)."""

    kind: Literal["silence"] = "silence"
    id: str = Field(min_length=1, max_length=100)
    silence: Silence | None
    by: str = Field(min_length=1, max_length=200)
    at: AwareDatetime

    @property
    def key(self) -> str:
        return f"silence:{self.id}"


class FolderSeed(_Message):
    """What the rule folder last published for one file name (its content's digest; "" for a
    deletion): the folder publishes again only when its own content changes."""

    kind: Literal["folder_seed"] = "folder_seed"
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}\.ya?ml$")
    sha256: str = Field(pattern=r"^([0-9a-f]{64})?$")
    at: AwareDatetime

    @property
    def key(self) -> str:
        return f"folder:{self.name}"


RulesTopicMessage = RuleFileVersion | SilenceChange | FolderSeed
RulesMessage = Annotated[RulesTopicMessage, Field(discriminator="kind")]
_MESSAGE = TypeAdapter(RulesMessage)


class RulesMessageError(ValueError):
    """A message on the rules topic that is not a rule file version, silence change or seed."""


def decode_rules_message(raw: bytes) -> RulesTopicMessage:
    try:
        return _MESSAGE.validate_json(raw)
    except ValidationError as exc:
        raise RulesMessageError(f"not a rules-topic message: {exc.errors()[0]['msg']}") from exc


def encode_rules_message(message: RulesTopicMessage) -> bytes:
    return message.model_dump_json().encode()


@dataclass(frozen=True)
class LibraryChange:
    rules_changed: bool = False
    silences_changed: bool = False
    errors: list[SourceError] = field(default_factory=list)


class RuleLibrary:
    def __init__(self) -> None:
        self.files: dict[str, RuleFileVersion] = {}  # the accepted version of each file
        self.folder_seeds: dict[str, str] = {}  # file name -> digest the folder last published
        self._good: dict[str, list[Rule]] = {}
        self.silences: dict[str, Silence] = {}
        self._rules: list[Rule] = []
        self._duplicates: list[SourceError] = []

    def apply(self, message: RulesTopicMessage) -> LibraryChange:
        if isinstance(message, FolderSeed):
            self.folder_seeds[message.name] = message.sha256
            return LibraryChange()
        if isinstance(message, SilenceChange):
            if message.silence is None:
                changed = self.silences.pop(message.id, None) is not None
            else:
                changed = self.silences.get(message.id) != message.silence
                self.silences[message.id] = message.silence
            return LibraryChange(silences_changed=changed)
        current = self.files.get(message.name)
        if current is not None and current.content == message.content:
            return LibraryChange()
        if message.content is None:
            self.files.pop(message.name, None)
            self._good.pop(message.name, None)
        else:
            try:
                rules = parse_rules(message.content, message.name)
            except YamlFileError as exc:
                return LibraryChange(errors=list(exc.errors))  # the previous version keeps running
            self.files[message.name] = message
            self._good[message.name] = rules
        self._rules, self._duplicates = unique_across_files(
            (Path(name), rules) for name, rules in sorted(self._good.items()))
        return LibraryChange(rules_changed=True, errors=list(self._duplicates))

    def rules(self) -> list[Rule]:
        return list(self._rules)

    def active_silences(self, now: datetime) -> list[Silence]:
        return [s for s in self.silences.values() if s.until > now]
