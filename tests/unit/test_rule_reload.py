from pathlib import Path

from rules.engine import RuleEngine
from rules.reload import RuleDirectoryWatcher
from tests.unit.test_rules import CROWD, detection


def test_changed_files_apply_and_broken_ones_keep_the_previous_version(tmp_path: Path) -> None:
    (tmp_path / "crowd.yaml").write_text(CROWD)
    watcher = RuleDirectoryWatcher([tmp_path])
    first = watcher.poll()
    assert first is not None and [r.id for r in first.rules] == ["crowd"] and first.errors == []
    assert watcher.poll() is None  # nothing changed

    (tmp_path / "crowd.yaml").write_text(CROWD.replace("min_count: 3", "min_count: 5"))
    changed = watcher.poll()
    assert changed is not None and changed.rules[0].condition.min_count == 5  # type: ignore[union-attr]

    (tmp_path / "crowd.yaml").write_text(CROWD.replace("min_count: 3", "min_count: lots"))
    broken = watcher.poll()
    assert broken is not None and broken.errors and "min_count" in str(broken.errors[0])
    assert broken.rules[0].condition.min_count == 5  # type: ignore[union-attr]  # the last good version

    (tmp_path / "crowd.yaml").unlink()
    gone = watcher.poll()
    assert gone is not None and gone.rules == []


def test_reloaded_engine_keeps_the_state_of_unchanged_rules(tmp_path: Path) -> None:
    (tmp_path / "crowd.yaml").write_text(CROWD)
    watcher = RuleDirectoryWatcher([tmp_path])
    result = watcher.poll()
    assert result is not None
    engine = RuleEngine(result.rules)
    fired = [a for s in range(7) for a in engine.evaluate(detection(s, 4))]
    assert [a.state for a in fired] == ["fired"]
    (tmp_path / "other.yaml").write_text(CROWD.replace("id: crowd", "id: crowd-2"))
    reloaded = watcher.poll()
    assert reloaded is not None
    engine.replace_rules(reloaded.rules)
    again = [a for s in range(7, 10) for a in engine.evaluate(detection(s, 4))]
    # 'crowd' already fired: no second alert; 'crowd-2' starts its own 5 s from t=7
    assert again == []
    later = [a.rule_id for a in engine.evaluate(detection(12, 4))]
    assert later == ["crowd-2"]
