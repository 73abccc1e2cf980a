"""The typed rule state and its compact form: every field survives a trip through the
changelog codec, and an engine whose table is read back from its changelog at every
event (as after a recovery, or from RocksDB) decides exactly as one that kept its objects."""

from __future__ import annotations

import random
from collections.abc import Iterator, MutableMapping
from typing import Any
from uuid import uuid4

import faust.utils.json as faust_json
import pytest

from ingest.events import Event
from rules.base import SourceInfo
from rules.engine import RuleEngine
from rules.model import Rule
from rules.state import Held, KeyState, Undecided
from rules.timekeeping import AllowedLateness
from tests.unit.rule_helpers import detection, reading, rule


class ChangelogTable(MutableMapping[str, Any]):
    """Keeps only what a changelog would carry: every write encoded by Faust's codec, every
    read decoded from it (the engine gets lists back, never its own objects)."""

    def __init__(self) -> None:
        self.wire: dict[str, str | bytes] = {}

    def __getitem__(self, key: str) -> Any:
        return faust_json.loads(self.wire[key])  # type: ignore[arg-type]  # orjson: bytes

    def __setitem__(self, key: str, value: Any) -> None:
        self.wire[key] = faust_json.dumps(value)

    def __delitem__(self, key: str) -> None:
        del self.wire[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.wire)

    def __len__(self) -> int:
        return len(self.wire)


def full_state() -> KeyState:
    state = KeyState("cam-1", {"w": [1, 2, 3]})
    state.last = 1_767_227_591_500_000
    state.holds, state.held_at, state.since = True, state.last, state.last  # relative 0: a time, not "none"
    state.alert_id, state.started = str(uuid4()), state.last - 5_000_000
    state.evidence = [str(uuid4()) for _ in range(3)]
    state.values, state.snapshot, state.models = {"count": 3}, "snapshot:x", ["a", "b"]
    state.false_since, state.clear_values = state.last - 1, {"count": 0}
    state.reminders, state.remind_at, state.muted = 2, state.last + 60_000_000, "silenced by s"
    state.cooldown_until = state.last + 1
    state.queue = [Held(state.last - 2, True, {"v": 1}, [str(uuid4())], None)]
    state.undecided = Undecided(state.last - 3, {"v": 0}, ["a"])
    state.offsets, state.groups = {"readings-0": 41}, ["cam-1/gate"]
    return state


def test_every_field_survives_the_changelog_codec() -> None:
    state = full_state()
    back = KeyState.of(faust_json.loads(faust_json.dumps(state)))
    assert back == state and back is not state
    assert back is not None and back.since == back.last and back.evidence == state.evidence


def test_the_compact_form_leaves_out_trailing_defaults_and_packs_ids() -> None:
    quiet = KeyState("aq-1")
    quiet.last = 1_767_227_591_500_000
    assert quiet.__json__() == ["aq-1", 1_767_227_591_500_000]
    assert KeyState().__json__() == []
    just_holding = KeyState("aq-1")
    just_holding.last = just_holding.held_at = just_holding.since = 100  # times relative to `last`: 0
    just_holding.holds = True
    assert just_holding.__json__() == ["aq-1", 100, {}, True, 0, 0]
    assert KeyState.of(just_holding.__json__()) == just_holding
    firing = full_state()
    packed = faust_json.dumps(firing)
    assert all(event_id not in str(packed) for event_id in firing.evidence)
    unusual = KeyState("x")
    unusual.evidence, unusual.alert_id = ["frame-7", "FRAME-8"], "not-a-uuid"  # other producers' ids
    assert KeyState.of(faust_json.loads(faust_json.dumps(unusual))) == unusual


def test_a_shorter_list_from_an_older_version_reads_with_defaults() -> None:
    state = KeyState.of(["cam-1", 100, {}, True, 0, 0])
    assert state is not None and state.holds and state.since == 100 and state.alert_id is None
    assert state.evidence == [] and state.groups == []
    with pytest.raises(TypeError, match="not a rule key state"):
        KeyState.of("cam-1")


@pytest.mark.parametrize("seed", range(3))
def test_a_table_of_the_dicts_from_before_typed_state_recovers(seed: int) -> None:
    """A worker upgraded over a changelog the previous version wrote: each key's dict reads
    as its typed state, and the decisions go on as if nothing had changed."""
    rules = [rule(text) for text in RULES]
    stream = sorted(events(seed), key=lambda event: event.time)
    half = len(stream) // 2
    straight = decisions(rules, {}, stream, 0, False)
    table: dict[str, Any] = {}
    first = decisions(rules, table, stream[:half], 0, False)
    legacy = {key: legacy_dict(value) for key, value in table.items()}
    assert all(KeyState.of(legacy[key]) == value for key, value in table.items())
    rest = decisions(rules, legacy, stream[half:], 0, False)
    assert rest and first + rest == straight


def legacy_dict(state: KeyState) -> dict[str, Any]:
    """The dict the engine wrote before typed state (rules/engine.py at 884f44d)."""
    old: dict[str, Any] = {"src": state.src, "m": state.memory}
    pairs = {"last": state.last, "ht": state.held_at, "since": state.since, "alert_id": state.alert_id,
             "started": state.started, "snapshot": state.snapshot, "false_since": state.false_since,
             "clear_values": state.clear_values, "remind_at": state.remind_at, "muted": state.muted,
             "cooldown_until": state.cooldown_until}
    old.update({k: v for k, v in pairs.items() if v is not None})
    if state.holds:
        old["h"] = True
    if state.alert_id is not None:
        old["reminders"] = state.reminders
    for short, value in (("evidence", state.evidence), ("values", state.values), ("mods", state.models),
                         ("o", state.offsets), ("keys", state.groups)):
        if value:
            old[short] = value
    if state.queue:
        old["q"] = [held.wire() for held in state.queue]
    if state.undecided is not None:
        old["pf"] = state.undecided.wire()
    return old


RULES = [
    """
id: crowd
title: Crowd
condition: {type: detection, classes: [person], min_count: 2, for: 3s}
resolve_after: 4s
realert: {every: 10s}
cooldown: 5s
""",
    """
id: loiter
title: Loitering
group_by: zone
condition: {type: detection, classes: [person], for: 2s}
""",
    """
id: pm
title: PM high
condition: {type: threshold, field: pm25, above: 50, for: 5s}
resolve_after: 3s
""",
    """
id: pm-peaks
title: PM peaks
condition: {type: frequency, of: {type: threshold, field: pm25, above: 75}, count: 3, within: 30s}
""",
    """
id: smoke-and-pm
title: Smoke and PM nearby
condition:
  type: all
  within: 10m
  near_m: 500
  conditions:
    - {type: detection, classes: [smoke], sources: {kinds: [camera]}}
    - {type: threshold, field: pm25, above: 50, sources: {kinds: [sensor]}}
""",
]
RULES.append("""
id: silent
title: Sensor silent
sources: {ids: [aq-1]}
condition: {type: absence, within: 4s}
""")
CATALOG = {"cam-1": SourceInfo(kind="camera", position=(48.8566, 2.3522)),
           "aq-1": SourceInfo(kind="sensor", position=(48.8590, 2.3540))}


def events(seed: int) -> list[Event]:
    """A shuffled-within-lateness mix of detections (two models' worth, zones, smoke) and readings."""
    chance = random.Random(seed)
    made: list[Event] = []
    for step in range(300):
        seconds = step * 0.5 + chance.uniform(-1.5, 0)  # out of order by up to 1.5 s
        if step % 3 == 0:
            made.append(reading(seconds, source="aq-1", pm25=chance.choice([10.0, 60.0, 80.0])))
        else:
            label = "smoke" if chance.random() < 0.1 else "person"
            seen = detection(seconds, persons=chance.choice([0, 1, 2, 3]), label=label,
                             zones=chance.choice([(), ("gate",)]))
            made.append(seen.model_copy(update={"model": chance.choice(["m", "n"])}))  # two models' views
    return made


def decisions(rules: list[Rule], table: MutableMapping[str, Any], stream: list[Event],
              lateness_s: float, positions: bool) -> list[tuple[Any, ...]]:
    lateness = AllowedLateness(camera=lateness_s, sensor=lateness_s)
    engine = RuleEngine(rules, state=table, sources=CATALOG, lateness=lateness)
    out: list[tuple[Any, ...]] = []
    for index, event in enumerate(stream):
        for alert in engine.evaluate(event, position=("input-0", index) if positions else None):
            values = tuple(sorted(alert.evidence.values.items(), key=str))
            out.append((alert.event_id, alert.state, alert.group_key, alert.time, alert.reminder,
                        tuple(alert.evidence.event_ids), values))
        if index % 5 == 0:
            for alert in engine.tick(event.time):
                out.append((alert.event_id, alert.state, alert.group_key, alert.time))
    return out


@pytest.mark.parametrize("lateness_s", [0, 2])
@pytest.mark.parametrize("seed", range(4))
def test_an_engine_reading_its_table_back_from_the_changelog_decides_the_same(seed: int, lateness_s: float,
                                                                              ) -> None:
    rules = [rule(text) for text in RULES]
    stream = events(seed) if lateness_s else sorted(events(seed), key=lambda event: event.time)
    positions = seed % 2 == 1  # a key that knows its log position never ends its compact form early
    kept = decisions(rules, {}, stream, lateness_s, positions)
    assert kept, "the mix must decide something, or the comparison proves nothing"
    assert decisions(rules, ChangelogTable(), stream, lateness_s, positions) == kept
    assert {a[1] for a in kept} == {"fired", "resolved"}
