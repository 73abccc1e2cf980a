"""The rule folder is a seed: it never reverts a newer version published from the CLI or the
console, only one worker publishes it, and only what the folder itself changed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from citywatch.rulebook import RuleBook
from rules.library import FolderSeed, RuleFileVersion, decode_rules_message
from rules.reload import RuleDirectoryWatcher

CROWD = "id: crowd\ntitle: Crowd\ncondition: {type: detection, classes: [person], min_count: %d}\n"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, key: bytes, value: bytes, headers: object = None) -> None:
        self.sent.append((topic, key, value))


def book(folder: Path, leads: bool = True) -> tuple[RuleBook, RecordingPublisher]:
    publisher = RecordingPublisher()
    rulebook = RuleBook(RuleDirectoryWatcher([folder]), publisher, lambda library, change: None,
                        lambda: leads)
    return rulebook, publisher


def replay_topic(rulebook: RuleBook, sent: list[tuple[str, bytes, bytes]]) -> None:
    for _, _, value in sent:
        rulebook.library.apply(decode_rules_message(value))


async def test_the_folder_publishes_once_and_never_reverts_a_published_version(tmp_path: Path) -> None:
    (tmp_path / "crowd.yaml").write_text(CROWD % 3)
    first, publisher = book(tmp_path)
    first.ready.set()
    assert await first.publish_folder() == 1
    topic = list(publisher.sent)
    # someone publishes min_count 5 from the CLI; the topic now holds both
    topic.append(("rules", b"file:crowd.yaml", RuleFileVersion(
        name="crowd.yaml", content=CROWD % 5, author="ana", published_at=NOW).model_dump_json().encode()))
    restarted, again = book(tmp_path)  # a worker (re)starts with the same, unchanged folder
    replay_topic(restarted, topic)
    restarted.ready.set()
    assert await restarted.publish_folder() == 0 and again.sent == []
    assert restarted.library.files["crowd.yaml"].content == CROWD % 5  # the CLI version stays live
    (tmp_path / "crowd.yaml").write_text(CROWD % 4)  # the folder's own file changes: it goes out
    assert await restarted.publish_folder() == 1
    seed = decode_rules_message(again.sent[-1][2])
    assert isinstance(seed, FolderSeed) and seed.sha256 == hashlib.sha256((CROWD % 4).encode()).hexdigest()


async def test_the_leader_publishes_changes_and_a_starting_worker_its_folder(tmp_path: Path) -> None:
    (tmp_path / "crowd.yaml").write_text(CROWD % 3)
    follower, quiet = book(tmp_path, leads=False)
    follower.ready.set()
    assert await follower.publish_folder() == 0 and quiet.sent == []
    starting, seeds = book(tmp_path, leads=False)  # any worker, at its start: what the folder changed
    assert await starting.publish_folder(starting=True) == 1 and len(seeds.sent) == 2
    leader, loud = book(tmp_path)
    assert await leader.publish_folder() == 0  # the topic not read yet: it cannot know what is live
    leader.ready.set()
    assert await leader.publish_folder() == 1 and len(loud.sent) == 2  # the version and its seed


async def test_a_file_deleted_while_no_worker_watched_is_deleted_on_the_topic(tmp_path: Path) -> None:
    (tmp_path / "crowd.yaml").write_text(CROWD % 3)
    first, publisher = book(tmp_path)
    first.ready.set()
    await first.publish_folder()
    (tmp_path / "crowd.yaml").unlink()
    restarted, again = book(tmp_path)
    replay_topic(restarted, publisher.sent)
    restarted.ready.set()
    assert await restarted.publish_folder() == 1
    deletion = decode_rules_message(again.sent[0][2])
    assert isinstance(deletion, RuleFileVersion) and deletion.content is None
