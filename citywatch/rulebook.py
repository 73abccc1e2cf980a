"""Rules in a worker: publish the rule folder to the `rules` topic, follow the topic, keep the
live library, and tell the engines when it changes.

The topic is the one source of truth for every worker (on any machine); the folder is a
declared seed (`citywatch rules publish`, the console and `rules sync --from-folder` are the
other writers). A starting worker, once it has read the topic to its end, publishes the
files whose content differs from what the folder itself last published
(rules.library.FolderSeed), and later only the leader (whoever owns clock partition 0)
publishes folder changes: a version published from the CLI or the console stays live until
the folder's own file changes. A worker starts evaluating
only once it has read the topic to its end, so it never runs with half a rule set.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from citywatch.publisher import Publisher
from citywatch.topics import Topics, follow_from_beginning
from rules.library import (
    FolderSeed,
    LibraryChange,
    RuleFileVersion,
    RuleLibrary,
    RulesMessageError,
    RulesTopicMessage,
    decode_rules_message,
    encode_rules_message,
)
from rules.reload import RuleDirectoryWatcher
from rules.yaml_source import SourceError

log = logging.getLogger(__name__)
TOPIC_RETRY_S = 2.0


async def publish_rules_message(publisher: Publisher, message: RulesTopicMessage) -> None:
    await publisher.send("rules", message.key.encode(), encode_rules_message(message))


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])


class RuleBook:
    def __init__(self, watcher: RuleDirectoryWatcher, publisher: Publisher,
                 on_change: Callable[[RuleLibrary, LibraryChange], None],
                 leads: Callable[[], bool] = lambda: True) -> None:
        self.library = RuleLibrary()
        self.watcher = watcher
        self.publisher = publisher
        self.on_change = on_change
        self.leads = leads
        self._polled = False
        self._published: dict[str, str | None] = {}  # what this worker's start published
        self.ready = asyncio.Event()
        self.author = f"directory@{socket.gethostname()}"

    async def publish_folder(self, starting: bool = False) -> int:
        """The leader publishes the folder's valid files the folder changed since it last
        published them (a broken file is reported and not sent); the others only watch, but
        for their start (`starting`, once the topic is read). Returns how many files went out."""
        if not starting and (not self.ready.is_set() or not self.leads()):
            return 0
        first = not self._polled
        result = self.watcher.poll()
        self._polled = True
        accepted: dict[str, str | None] = dict(result.accepted) if result is not None else {}
        if first:  # files the folder published and no longer has: deleted while no worker watched
            present = self.watcher.names()
            for name, version in self.library.files.items():
                if version.origin == "directory" and name not in present:
                    accepted[name] = None
        for error in result.errors if result is not None else ():
            log.error("rule file refused (its previous version keeps running): %s", error)
        now = datetime.now(UTC)
        sent = 0
        for name, content in accepted.items():
            digest = hashlib.sha256(content.encode()).hexdigest() if content is not None else ""
            if self.library.folder_seeds.get(name) == digest:
                continue  # the folder has not changed this file since it last published it
            live = self.library.files.get(name)
            if content is None and (live is None or live.origin != "directory"):
                continue  # gone from the folder, but what is live someone else published
            await publish_rules_message(self.publisher, RuleFileVersion(
                name=name, content=content, author=self.author, published_at=now, origin="directory"))
            await publish_rules_message(self.publisher, FolderSeed(name=name, sha256=digest, at=now))
            if starting:
                self._published[name] = content
            sent += 1
        return sent

    def _live_content(self, name: str) -> str | None:
        version = self.library.files.get(name)
        return version.content if version is not None else None

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
        """Until cancelled: read the topic from its beginning, publish what the folder changed
        since it last published (every starting worker: its folder may be newer; the seeds
        make an unchanged folder publish nothing), read that back, and only then evaluate;
        then follow the topic."""
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        seeded = False
        try:
            ends = await follow_from_beginning(consumer, [topics.name("rules")], TOPIC_RETRY_S)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self.apply(record.value or b"")
                if self.ready.is_set() or not await _caught_up(consumer, ends):
                    continue
                if not seeded:
                    seeded = True
                    await self.publish_folder(starting=True)
                if any(self._live_content(name) != content for name, content in self._published.items()):
                    continue  # read our own versions back first (a buffered send lands later)
                self.ready.set()
                log.info("rules topic read: %d rules, %d silences", len(self.library.rules()),
                         len(self.library.silences))
        finally:
            await consumer.stop()
