"""Rules in a worker: publish the rule folder to the `rules` topic, follow the topic, keep the
live library, and tell the engines when it changes.

The topic is the one source of truth for every worker (on any machine); the folder is one
way to write to it (`citywatch rules publish` and the console are others). A worker starts
evaluating only once it has read the topic to its end, so it never runs with half a rule set.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from citywatch.publisher import Publisher
from citywatch.topics import Topics, follow_from_beginning
from rules.library import (
    LibraryChange,
    RuleFileVersion,
    RuleLibrary,
    RulesMessageError,
    SilenceChange,
    decode_rules_message,
    encode_rules_message,
)
from rules.reload import RuleDirectoryWatcher
from rules.yaml_source import SourceError

log = logging.getLogger(__name__)
TOPIC_RETRY_S = 2.0


async def publish_rules_message(publisher: Publisher, message: RuleFileVersion | SilenceChange) -> None:
    await publisher.send("rules", message.key.encode(), encode_rules_message(message))


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])


class RuleBook:
    def __init__(self, watcher: RuleDirectoryWatcher, publisher: Publisher,
                 on_change: Callable[[RuleLibrary, LibraryChange], None]) -> None:
        self.library = RuleLibrary()
        self.watcher = watcher
        self.publisher = publisher
        self.on_change = on_change
        self.ready = asyncio.Event()
        self.author = f"directory@{socket.gethostname()}"

    async def publish_folder(self) -> None:
        """Publish the folder's changed, valid files (a broken file is reported and not sent)."""
        result = self.watcher.poll()
        if result is None:
            return
        for error in result.errors:
            log.error("rule file refused (its previous version keeps running): %s", error)
        now = datetime.now(UTC)
        for name, content in result.accepted.items():
            await publish_rules_message(self.publisher, RuleFileVersion(
                name=name, content=content, author=self.author, published_at=now, origin="directory"))

    async def _forget_deleted_files(self) -> None:
        """Files the folder published earlier and no longer has were deleted while no worker
        watched: delete them on the topic too."""
        now = datetime.now(UTC)
        present = self.watcher.names()
        for name, version in list(self.library.files.items()):
            if version.origin == "directory" and name not in present:
                await publish_rules_message(self.publisher, RuleFileVersion(
                    name=name, content=None, author=self.author, published_at=now, origin="directory",
                    comment="no longer in the rule folder"))

    def apply(self, raw: bytes) -> LibraryChange:
        try:
            message = decode_rules_message(raw)
        except RulesMessageError as exc:
            log.error("ignoring a message on the rules topic: %s", exc)
            return LibraryChange(errors=[SourceError("rules topic", 1, 1, str(exc))])
        change = self.library.apply(message)
        for error in change.errors:
            log.error("rule version refused (the previous one keeps running): %s", error)
        if change.rules_changed or change.silences_changed:
            self.on_change(self.library, change)
        if change.silences_changed and self.ready.is_set():
            log.info("silences changed: %d now", len(self.library.silences))
        return change

    async def follow(self, bootstrap_servers: str, topics: Topics) -> None:
        """Until cancelled: publish the folder, read the topic from its beginning, then follow it."""
        await self.publish_folder()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            ends = await follow_from_beginning(consumer, [topics.name("rules")], TOPIC_RETRY_S)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self.apply(record.value or b"")
                if not self.ready.is_set() and await _caught_up(consumer, ends):
                    self.ready.set()
                    log.info("rules topic read: %d rules, %d silences", len(self.library.rules()),
                             len(self.library.silences))
                    await self._forget_deleted_files()
        finally:
            await consumer.stop()
