"""Which table files a worker trusts (citywatch.table_store): only a clean stop's, and only
while their changelog is at least as long as what they applied."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import rocksdict

from citywatch import table_store
from citywatch.table_store import OFFSET_KEY, TableSlot, discard_stale


def _db(path: Path, applied: int | None) -> None:
    db = rocksdict.Rdict(str(path))
    db[b"some-key"] = b"{}"
    if applied is not None:
        db[OFFSET_KEY] = str(applied).encode()
    db.close()


def test_workers_of_one_state_folder_claim_different_slots(tmp_path: Path) -> None:
    first, second = TableSlot.claim(tmp_path), TableSlot.claim(tmp_path)
    assert (first.folder.name, second.folder.name) == ("slot-0", "slot-1")


def test_files_without_a_clean_stop_are_discarded(tmp_path: Path) -> None:
    slot = TableSlot.claim(tmp_path)
    slot.tables.mkdir(parents=True)
    (slot.tables / "rule-state-0.db").mkdir()
    assert slot.open_for_work() is False
    assert slot.files() == [] and slot.tables.is_dir()


def test_a_clean_stops_files_are_kept_and_vouch_for_nothing_once_running(tmp_path: Path) -> None:
    slot = TableSlot.claim(tmp_path)
    slot.tables.mkdir(parents=True)
    _db(slot.tables / "rule-state-3.db", 7)
    (slot.folder / "clean").touch()
    assert slot.open_for_work() is True
    assert [(f.table, f.partition) for f in slot.files()] == [("rule-state", 3)]
    assert not (slot.folder / "clean").exists()


def test_a_stop_with_unacknowledged_changelog_records_is_not_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    slot = TableSlot.claim(tmp_path)
    monkeypatch.setattr(table_store.ACKS, "sent", 5)
    monkeypatch.setattr(table_store.ACKS, "acknowledged", 4)
    assert slot.mark_clean() is False and not (slot.folder / "clean").exists()
    monkeypatch.setattr(table_store.ACKS, "acknowledged", 5)
    assert slot.mark_clean() is True and (slot.folder / "clean").exists()


async def test_files_ahead_of_their_changelog_are_discarded(tmp_path: Path) -> None:
    slot = TableSlot.claim(tmp_path)
    slot.tables.mkdir(parents=True)
    _db(slot.tables / "rule-state-0.db", 41)  # its changelog ends at 42: applied all but nothing more
    _db(slot.tables / "rule-state-1.db", 41)  # its changelog ends at 41: recreated since
    _db(slot.tables / "escalations-0.db", 3)  # its changelog topic is gone
    _db(slot.tables / "escalations-1.db", None)  # never written from a changelog
    ends = {("app-rule-state-changelog", 0): 42, ("app-rule-state-changelog", 1): 41,
            ("app-escalations-changelog", 0): None, ("app-escalations-changelog", 1): 0}
    asked: list[tuple[str, int]] = []

    async def end_offsets(wanted: list[tuple[str, int]]) -> Mapping[tuple[str, int], int | None]:
        asked.extend(wanted)
        return {where: ends[where] for where in wanted}

    assert await discard_stale(slot, lambda table: f"app-{table}-changelog", end_offsets) == 2
    assert sorted(f.path.name for f in slot.files()) == ["escalations-1.db", "rule-state-0.db"]
    assert sorted(asked) == sorted(ends)
