"""Each worker's local table files: RocksDB, kept across restarts, so a worker that starts
again (or gets a partition back) reads only the tail of each changelog, not all of it.

Faust's RocksDB store writes a change to the local file before the broker has acknowledged
its changelog record, and records in the file the changelog offset it has applied. After a
crash a file can hold changes the changelog never got: read again from it, the next message
would meet state that no other worker can see. So files are trusted only after a clean stop:

- on start the `clean` marker is removed; files found without one (kill -9, a power cut, a
  stop that timed out) are discarded and the tables recover from the changelogs, as with
  the memory store;
- a file whose applied offset is not below its changelog partition's end (the topic was
  deleted and created again, the broker lost its data) is discarded too;
- on a clean stop the marker is written only if the broker acknowledged every changelog
  record this worker sent (ChangelogAcks, counted by TrackedTable).

Several workers on one host may share a settings file and so a state folder: each claims a
slot (a folder locked with flock for the life of the process), so no two open the same
files. Whichever slot a restarted worker gets, the changelog tail brings its files up to date.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

log = logging.getLogger(__name__)

MAX_SLOTS = 64
CLEAN_MARKER = "clean"
OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps a file's applied offset
_FILE = re.compile(r"^(?P<table>.+)-(?P<partition>\d+)\.db$")


class ChangelogAcks:
    """Changelog records sent and acknowledged by the broker, for the whole process."""

    def __init__(self) -> None:
        self.sent = 0
        self.acknowledged = 0

    @property
    def pending(self) -> int:
        return self.sent - self.acknowledged


ACKS = ChangelogAcks()


class TrackedTable(faust.Table[Any, Any]):
    """A Faust table that counts its changelog records in ACKS."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        sent = super().send_changelog(*args, **kwargs)
        ACKS.sent += 1
        return sent

    def _on_changelog_sent(self, fut: Any) -> None:
        super()._on_changelog_sent(fut)  # raises when the send failed: that record stays pending
        ACKS.acknowledged += 1


@dataclass(frozen=True)
class TableFile:
    table: str
    partition: int
    path: Path


class TableSlot:
    """One worker's claim on a folder of table files (see the module)."""

    def __init__(self, folder: Path, lock: int) -> None:
        self.folder = folder
        self._lock = lock  # held open: the flock lasts as long as the process

    @classmethod
    def claim(cls, base: Path) -> TableSlot:
        base.mkdir(parents=True, exist_ok=True)
        for number in range(MAX_SLOTS):
            folder = base / f"slot-{number}"
            folder.mkdir(exist_ok=True)
            lock = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock)
                continue
            return cls(folder, lock)
        raise RuntimeError(f"all {MAX_SLOTS} table slots in {base} are held by running workers")

    @property
    def tables(self) -> Path:
        """Faust's `tabledir`."""
        return self.folder / "tables"

    def open_for_work(self) -> bool:
        """Remove the clean marker; discard the files unless it was there. True if kept."""
        marker = self.folder / CLEAN_MARKER
        clean = marker.exists()
        marker.unlink(missing_ok=True)
        if not clean and self.tables.exists():
            log.warning("table files in %s were not left by a clean stop; discarding them (the tables "
                        "recover from their changelogs)", self.tables)
            shutil.rmtree(self.tables)
        self.tables.mkdir(parents=True, exist_ok=True)
        return clean

    def files(self) -> list[TableFile]:
        found = []
        for path in sorted(self.tables.glob("*.db")) if self.tables.exists() else []:
            if match := _FILE.match(path.name):
                found.append(TableFile(match["table"], int(match["partition"]), path))
        return found

    def mark_clean(self) -> bool:
        """After the worker stopped: trust the files next time if nothing is unacknowledged."""
        if ACKS.pending:
            log.warning("%d changelog records were never acknowledged; the table files will be discarded "
                        "at the next start", ACKS.pending)
            return False
        os.sync()  # the files' writes reach the disk before the marker that vouches for them
        marker = os.open(self.folder / CLEAN_MARKER, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.fsync(marker)
        finally:
            os.close(marker)
        return True


def applied_offset(path: Path) -> int | None:
    """The changelog offset a table file has applied (None: never written from a changelog)."""
    import rocksdict

    db = rocksdict.Rdict(str(path), access_type=rocksdict.AccessType.read_only())
    try:
        value = db.get(OFFSET_KEY)
    finally:
        db.close()
    return None if value is None else int(value)


EndOffsets = Callable[[list[tuple[str, int]]], Awaitable[Mapping[tuple[str, int], int | None]]]


async def discard_stale(slot: TableSlot, changelog_of: Callable[[str], str], end_offsets: EndOffsets) -> int:
    """Discard the files whose changelog partition is gone or shorter than what they applied;
    returns how many. `end_offsets` answers None for a partition that does not exist."""
    files = [(file, applied_offset(file.path)) for file in slot.files()]
    wanted = [(changelog_of(file.table), file.partition) for file, _ in files]
    ends = await end_offsets(wanted) if wanted else {}
    discarded = 0
    for (file, applied), where in zip(files, wanted, strict=True):
        end = ends.get(where)
        if applied is not None and (end is None or applied >= end):
            log.warning("%s applied changelog offset %d but %s[%d] ends at %s (recreated, or the broker lost "
                        "data); discarding it", file.path.name, applied, where[0], where[1], end)
            shutil.rmtree(file.path)
            discarded += 1
    return discarded


def end_offsets_from(bootstrap_servers: str) -> EndOffsets:
    """EndOffsets read from the broker by a group-less consumer (see topics.log_ends)."""
    async def read(wanted: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from citywatch.topics import log_ends

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()  # aiokafka has no public call for this
            existing = [TopicPartition(topic, partition) for topic, partition in wanted
                        if partition in (consumer.partitions_for_topic(topic) or ())]
            ends = await log_ends(consumer, existing)
            return {(topic, p): ends.get(TopicPartition(topic, p)) for topic, p in wanted}
        finally:
            await consumer.stop()

    return read
