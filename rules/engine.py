"""Streaming rule evaluation: condition held long enough → fired; reminded while it stays;
false long enough → resolved.

Every decision about data is made in event time. Each key (rule and group: a source, a
zone, a track) has a watermark, the latest event time it has seen, advanced only by its
own events; `for`, `resolve_after`, reminders, cooldown and windows are timers on that
watermark and fire at their due event time, so a lagging consumer, a backlog published at
once and a recorded flight from years ago decide exactly as a replay of the same events.
Events older than the watermark by more than the allowed lateness of their source kind
are late (counted, never evaluated); within it, decisions wait and go in time order (see
rules.timekeeping). Absence is the one processing-time decision: its keys run on arrival
times and on `tick`, a clock the worker holds back while it is behind.

State per key (a typed `KeyState`, rules/state.py, compact on the changelog) lives in any
MutableMapping: a dict in tests, a Faust table in the worker (so a restarted worker neither
forgets nor refires). Alert ids are derived from rule, group key and firing start, so
re-processing an event reproduces the same alert instead of a second one.

An engine can take every rule (tests, replays), only the per-source ones (the worker's
evaluate agent, partitioned by source), or only those that join sources by distance (the
correlate agent, partitioned by rule).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from detectors.events import Detection
from ingest.events import DataQuality, Event
from rules.base import Observation, Seen, SourceInfo
from rules.conditions import AbsenceCondition, CompositeCondition
from rules.conditions.windowed import DATA_EVENTS
from rules.events import Alert, Evidence
from rules.keys import group_key_of, group_of, rule_of
from rules.model import Rule
from rules.silences import Silence
from rules.state import Held, KeyState, Undecided
from rules.timekeeping import AllowedLateness

ALERT_NAMESPACE = uuid.UUID("6f1c9a52-3c1e-4b8e-9f57-4a8f0c3d2b11")
MAX_EVIDENCE = 10
MAX_PENDING = 1_000  # decisions a key holds back for lateness; beyond, the oldest is taken early
US = 1_000_000
AREA = "~"  # the group key of a cross-source rule's shared memory
ACTIVE = "*"  # the group key listing a rule's active zone/track groups of one source

Candidate = tuple[Rule, bool]  # a rule, and whether the index alone proves its selector matches
Scope = Literal["all", "per_source", "across_sources"]
NO_INFO = SourceInfo()

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_US


def from_us(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)


def alert_id_for(rule_id: str, group_key: str, started_at: datetime) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, f"{rule_id}|{group_key}|{started_at.isoformat()}")


@cache
def _fields(event_type: type) -> frozenset[str]:
    """An event type's fields, looked up once: asking a pydantic model for an attribute it
    lacks goes through its __getattr__ and an exception (about 5 µs, per event)."""
    return frozenset(getattr(event_type, "model_fields", {}))


def source_kind(event: Event) -> str:
    """camera / drone / sensor: what kind of source the event came from."""
    if isinstance(event, DataQuality):
        return event.source_kind or ""
    return str(event.kind) if "kind" in _fields(type(event)) else ""  # type: ignore[attr-defined]


class _Index:
    """Rules of one event type, by the source ids, kinds or tags they select: an event meets
    only the rules that can match its source, so a thousand rules cost what a handful do."""

    def __init__(self) -> None:
        self.by_id: dict[str, list[Candidate]] = defaultdict(list)
        self.by_kind: dict[str, list[Candidate]] = defaultdict(list)
        self.by_tag: dict[str, list[Candidate]] = defaultdict(list)
        self.any_source: list[Candidate] = []

    def add(self, rule: Rule) -> None:
        """Filed under its most selective criterion; `exact` when that criterion is the
        selector's only one, so a match from the index needs no second check."""
        selector = rule.sources
        criteria = (selector.ids, selector.kinds, selector.tags, selector.near, selector.inside)
        exact = sum(map(bool, criteria)) == 1
        if selector.ids:
            for source_id in selector.ids:
                self.by_id[source_id].append((rule, exact))
        elif selector.kinds:
            for kind in selector.kinds:
                self.by_kind[kind].append((rule, exact))
        elif selector.tags:
            for tag in selector.tags:
                self.by_tag[tag].append((rule, exact))
        else:
            self.any_source.append((rule, selector.is_empty))

    def matching(self, seen: Seen) -> list[Rule]:
        found = [*self.by_id.get(seen.source_id, ()), *self.by_kind.get(seen.kind, ()), *self.any_source]
        if self.by_tag and seen.info.tags:
            for tag in seen.info.tags:
                found.extend(c for c in self.by_tag.get(tag, ()) if c not in found)
        return [rule for rule, exact in found if exact or rule.sources.matches(seen)]


class RuleEngine:
    def __init__(
        self,
        rules: Iterable[Rule],
        state: MutableMapping[str, Any] | None = None,
        sources: Mapping[str, SourceInfo] | None = None,
        silences: Iterable[Silence] = (),
        scope: Scope = "all",
        lateness: AllowedLateness | None = None,
    ) -> None:
        self.state: MutableMapping[str, Any] = {} if state is None else state
        """Key → KeyState (rules/state.py); a Faust table recovered from its changelog holds
        their compact form until each is next read."""
        self.sources: Mapping[str, SourceInfo] = sources or {}
        self.scope = scope
        self.silences: list[Silence] = list(silences)
        self.lateness = lateness or AllowedLateness()
        self.late_events = 0  # events some key found older than its watermark allows
        self.was_late = False  # the last evaluated data event was late (behind its own stream)
        self.late_behind_us = 0  # ... by this much
        self.late_allowed_us = 0  # ... with this lateness allowed
        self._timed: set[str] | None = None  # keys of processing-time rules (absence), found lazily
        # per source, in this process: the newest data event time, and the log offset it came at
        self._source_watermarks: dict[tuple[str, str], tuple[int, str, int]] = {}
        self._position: tuple[str, int] | None = None
        self.replace_rules(rules)

    # -- configuration ----------------------------------------------------------------

    def replace_rules(self, rules: Iterable[Rule]) -> None:
        """Swap the rule set (hot reload). State is keyed by rule id and group, so a rule
        that is still there keeps its timers and its fired alert."""
        enabled = [rule for rule in rules if rule.enabled]
        self._all_enabled = enabled
        self._rules = [rule for rule in enabled if self._in_scope(rule)]
        self._by_id = {rule.id: rule for rule in self._rules}
        self._index = self._build_index(self._rules)
        self._across_index = self._build_index([r for r in enabled if r.across_sources])
        self._across_ids = frozenset(r.id for r in enabled if r.across_sources)
        self._timed = None

    def _in_scope(self, rule: Rule) -> bool:
        if self.scope == "per_source":
            return not rule.across_sources
        if self.scope == "across_sources":
            return rule.across_sources
        return True

    @staticmethod
    def _build_index(rules: Iterable[Rule]) -> dict[type, _Index]:
        index: dict[type, _Index] = defaultdict(_Index)
        for rule in rules:
            for event_type in rule.event_types:
                index[event_type].add(rule)
        return dict(index)

    def set_silences(self, silences: Iterable[Silence]) -> None:
        self.silences = list(silences)

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    # -- events -----------------------------------------------------------------------

    def seen(self, event: Event, arrived: datetime | None = None) -> Seen:
        info = self.sources.get(event.source_id, NO_INFO)
        position = event.position if "position" in _fields(type(event)) else None  # type: ignore[attr-defined]
        return Seen(
            event=event, source_id=event.source_id, kind=source_kind(event) or info.kind,
            now_us=to_us(event.time), info=info,
            position=(position.lat, position.lon) if position is not None else None,
            arrived_us=None if arrived is None else to_us(arrived),
        )

    def evaluate(self, event: Event, arrived: datetime | None = None,
                 position: tuple[str, int] | None = None) -> list[Alert]:
        """The alerts this event decides. `arrived`: when it entered the pipeline (the
        processing time absence measures silence by); a replay leaves it to the event time.
        `position`: where it sits in its log (topic-partition, offset), so a record delivered
        again after a crash, which its keys already decided, is known as such and not as late."""
        self.was_late, self.late_behind_us, self.late_allowed_us = False, 0, 0
        alerts: list[Alert] = []
        index = self._index.get(type(event))
        if index is None:
            return alerts
        seen = self.seen(event, arrived)  # once per event, not per rule
        matching = index.matching(seen)
        if not matching:
            return alerts  # no rule reads it: nothing to decide, nothing to be late for
        self._position = position
        if isinstance(event, DATA_EVENTS) and self._behind_its_source(seen, position):
            return alerts
        for rule in matching:
            if rule.across_sources:
                alerts.extend(self._evaluate_area(rule, seen))
            elif rule.group_by == "source" or not isinstance(event, Detection):
                alerts.extend(self._evaluate_group(rule, seen.source_id, seen))
            else:
                for group, view in self._split(rule, seen, event):
                    alerts.extend(self._evaluate_group(rule, group, view))
        return alerts

    def _behind_its_source(self, seen: Seen, position: tuple[str, int] | None) -> bool:
        """Late for every rule: older, by more than the allowed lateness, than data of the same
        kind this source already sent (its stream: readings, detections or telemetry, each
        in order from its producer). A record met again at or before its offset is a
        redelivery, not late."""
        stream = (seen.source_id, type(seen.event).__name__)
        known = self._source_watermarks.get(stream)
        redelivered = (known is not None and position is not None and known[1] == position[0]
                       and position[1] <= known[2])
        if known is not None and not redelivered and seen.now_us < known[0] - self.lateness.us(seen.kind):
            self.was_late = True
            self.late_behind_us = known[0] - seen.now_us
            self.late_allowed_us = self.lateness.us(seen.kind)
            self.late_events += 1
            return True
        if known is None or seen.now_us > known[0]:
            log, offset = position if position is not None else ("", -1)
            self._source_watermarks[stream] = (seen.now_us, log, offset)
        return False

    def across_rules_for(self, event: Event) -> list[str]:
        """Ids of the rules joining sources that this event feeds: the worker forwards the
        event to them, keyed by rule, so one partition sees every source of a rule."""
        index = self._across_index.get(type(event))
        if index is None:
            return []
        seen = self.seen(event)
        return [rule.id for rule in index.matching(seen)
                if isinstance(rule.condition, CompositeCondition) and rule.condition.looks_at(seen)]

    def _evaluate_group(self, rule: Rule, group: str, seen: Seen) -> list[Alert]:
        key = group_key_of(rule.id, group)
        stored = self._load(key)
        lateness_us = 0
        if rule.processing_time:  # absence: the key runs on arrival times, never backwards
            arrived = seen.arrived_us if seen.arrived_us is not None else seen.now_us
            seen = replace(seen, now_us=max(arrived, stored.watermark(arrived) if stored else arrived))
        else:
            lateness_us = self.lateness.us(seen.kind)
            if stored is not None and self._position is not None:
                log, offset = self._position
                if offset <= stored.offsets.get(log, -1):
                    return []  # delivered again (a crash before the commit): already decided
            if stored is not None and seen.now_us < stored.watermark(seen.now_us) - lateness_us:
                # Behind this key but not behind its own stream: a key reading two kinds of events
                # (a composite of detections and readings) met them out of order. Its decisions
                # are taken; allowed lateness covers the delay between such streams.
                return []
        now_us = seen.now_us
        if stored is None:  # the common case of a quiet key: decide without building state
            memory: dict[str, Any] = {}
            observation = rule.condition.observe(seen, memory)
            if (observation is None or not observation.holds) and not memory:
                return []
            state = KeyState(memory=memory)
            was_idle = True
        else:  # mutated in place and stored again (a Faust table sees the assignment)
            was_idle = stored.idle()
            state = stored
            observation = rule.condition.observe(seen, state.memory)
        evidence: list[str] = []
        snapshot = None
        if observation is not None and observation.holds:  # only a holding one keeps evidence
            evidence = [seen.event_id]
            snapshot = seen.event.snapshot if isinstance(seen.event, Detection) else None
        if lateness_us:
            alerts = self._hold_back(rule, group, state, observation, now_us, evidence, snapshot, lateness_us)
        elif observation is not None:
            alerts = self._decide(rule, group, state, observation, now_us, evidence, snapshot,
                                  seen.event.model if isinstance(seen.event, Detection) else None)
        else:  # an event of the key that the condition has no opinion on: its time still passes
            moved = rule.condition.on_time(state.memory, now_us)  # a window moves on
            alerts = (self._decide(rule, group, state, moved, now_us, [], None) if moved is not None
                      else self._advance(rule, group, state, now_us))
        if was_idle and state.idle():
            return alerts  # nothing to remember: no state write (a Faust table write each)
        state.last = max(state.watermark(now_us), now_us)
        state.src = seen.source_id
        if self._position is not None:
            log, offset = self._position
            state.offsets = {**state.offsets, log: offset}
        self._save(rule, key, group, seen.source_id, state)
        return alerts

    def _hold_back(self, rule: Rule, group: str, state: KeyState, observation: Observation | None,
                   now_us: int, evidence: list[str], snapshot: str | None, lateness_us: int) -> list[Alert]:
        """With allowed lateness, observations wait until the key's watermark minus the
        lateness passes them, then decide in event-time order: an out-of-order event that
        arrives within the lateness lands where it belongs."""
        if observation is not None:
            held = Held(now_us, observation.holds, observation.values, evidence, snapshot)
            state.hold_back(held, MAX_EVIDENCE)
        frontier = max(state.watermark(now_us), now_us) - lateness_us
        alerts: list[Alert] = []
        pending = state.queue
        while pending and (pending[0].at <= frontier or len(pending) > MAX_PENDING):
            due = pending.pop(0)
            alerts.extend(self._decide(rule, group, state, Observation(holds=due.holds, values=due.values),
                                       due.at, due.evidence, due.snapshot))
        alerts.extend(self._advance(rule, group, state, frontier))
        return alerts

    def _evaluate_area(self, rule: Rule, seen: Seen) -> list[Alert]:
        condition = rule.condition
        assert isinstance(condition, CompositeCondition)
        area_key = group_key_of(rule.id, AREA)
        area = self._load(area_key) or KeyState(rule.id)
        decisions = condition.observe_area(seen, area.memory)
        self.state[area_key] = area
        return self._apply_area(rule, decisions or {}, seen.now_us, seen.event_id)

    def _apply_area(self, rule: Rule, decisions: dict[str, Observation], now_us: int,
                    event_id: str | None) -> list[Alert]:
        alerts: list[Alert] = []
        for anchor, observation in decisions.items():
            key = group_key_of(rule.id, anchor)
            state = self._load(key) or KeyState(rule.id)
            evidence = list(observation.evidence) or ([event_id] if event_id else [])
            alerts.extend(self._decide(rule, anchor, state, observation, now_us, evidence, None))
            self.state[key] = state
        return alerts

    def _split(self, rule: Rule, seen: Seen, event: Detection) -> list[tuple[str, Seen]]:
        """One view of the detection per zone (or tracked object), plus an empty view for
        each group still active from earlier frames, so it can resolve when it empties."""
        by_group: dict[str, list[Any]] = defaultdict(list)
        for box in event.boxes:
            if rule.group_by == "zone":
                for zone in box.zones:
                    by_group[f"{seen.source_id}/{zone}"].append(box)
            elif box.track_id is not None:
                by_group[f"{seen.source_id}#{box.track_id}"].append(box)
        registry = self._load(group_key_of(rule.id, seen.source_id + ACTIVE))
        active = registry.groups if registry is not None else []
        for group in active:
            by_group.setdefault(group, [])
        views = []
        for group, boxes in by_group.items():
            view = event.model_copy(update={"boxes": tuple(boxes)})
            views.append((group, Seen(event=view, source_id=seen.source_id, kind=seen.kind,
                                      now_us=seen.now_us, info=seen.info,
                                      position=seen.position)))
        return views

    def _load(self, key: str) -> KeyState | None:
        return KeyState.of(self.state.get(key))

    def _save(self, rule: Rule, key: str, group: str, source_id: str | None, state: KeyState) -> None:
        if rule.group_by == "source":
            self.state[key] = state
            return
        registry_key = group_key_of(rule.id, (source_id or group) + ACTIVE)
        registry = self._load(registry_key) or KeyState(source_id)
        keys = list(registry.groups)
        if state.idle():  # zones and tracks come and go: forget idle ones
            if key in self.state:
                del self.state[key]
            if group in keys:
                keys.remove(group)
        else:
            self.state[key] = state
            if group not in keys:
                keys.append(group)
        if keys != registry.groups:
            registry.groups = keys
            self.state[registry_key] = registry

    # -- time ------------------------------------------------------------------------

    def tick(self, now: datetime, owns: Callable[[str], bool] | None = None) -> list[Alert]:
        """Processing time passes for absence: `now` is the worker's lag-aware clock (it stops
        while the worker is behind), so silence is never inferred from data still queued.
        Data decisions never move here: they wait for their key's own events. Only absence
        keys are visited. `owns(partition_key)` limits the work to this worker's states."""
        now_us = to_us(now)
        alerts: list[Alert] = []
        self._expect_listed_sources(now_us, owns)
        for key in list(self._timed_keys()):
            stored = self._load(key)
            rule = self._by_id.get(rule_of(key))
            if stored is None or rule is None:
                self._timed_keys().discard(key)
                continue
            group = group_of(key)
            if (owns is not None and not owns(stored.src or group)) or now_us <= stored.watermark(0):
                continue
            state = stored.copy()
            observation = rule.condition.on_time(state.memory, now_us)
            if observation is None:
                observation = Observation(holds=state.holds, values={})
            found = self._decide(rule, group, state, observation, now_us, [], None)
            if found or state != stored:  # most ticks change nothing: no table write
                self._save(rule, key, group, state.src or group, state)
            alerts.extend(found)
        return alerts

    def _timed_keys(self) -> set[str]:
        """The keys of processing-time rules, found by one scan of the state and then kept
        as they are written (`forget_timers` after a rebalance brings other partitions)."""
        if self._timed is None:
            timed_rules = {rule.id for rule in self._rules if rule.processing_time}
            self._timed = {key for key in list(self.state.keys())
                           if rule_of(key) in timed_rules} if timed_rules else set()
        return self._timed

    def forget_timers(self) -> None:
        """The state changed under the engine (partitions assigned): find the timed keys anew."""
        self._timed = None

    def joins_sources(self, rule_id: str) -> bool:
        """Whether the rule joins sources (its state lives where the correlate engine runs)."""
        return rule_id in self._across_ids

    def force_resolve(self, rule_id: str, group_key: str, alert_id: str, now: datetime,
                      by: str) -> list[Alert]:
        """An operator closes the alert by hand: it resolves now, and fires again only when
        its condition holds anew (a fresh `for`, after any cooldown)."""
        key = group_key_of(rule_id, group_key)
        stored = self._load(key)
        rule = self._by_id.get(rule_id)
        if rule is None or stored is None or stored.alert_id != alert_id:
            return []  # not firing (any more), or not this firing: nothing to do
        state = stored.copy()
        now_us = state.watermark(to_us(now))  # the key's own time: a 2017 flight resolves in 2017
        state.muted = None
        alert = self._alert(rule, group_key, state, "resolved", now_us)
        alert = alert.model_copy(update={"evidence": alert.evidence.model_copy(
            update={"values": {**alert.evidence.values, "resolved_by": by}})})
        fresh = KeyState(state.src or group_key)
        fresh.last = state.watermark(now_us)
        if rule.cooldown:
            fresh.cooldown_until = now_us + int(rule.cooldown * US)
        self.state[key] = fresh
        return [alert]

    def _expect_listed_sources(self, now_us: int, owns: Callable[[str], bool] | None) -> None:
        """Absence rules naming their sources expect them from the start: a sensor that never
        reported is as dead as one that stopped."""
        for rule in self._rules:
            if not isinstance(rule.condition, AbsenceCondition):
                continue
            for source_id in rule.sources.ids:
                key = group_key_of(rule.id, source_id)
                if key not in self.state and (owns is None or owns(source_id)):
                    self.state[key] = KeyState(source_id, {"from": now_us})
                    self._timed_keys().add(key)

    # -- decisions -------------------------------------------------------------------

    def _decide(self, rule: Rule, group: str, state: KeyState, seen: Observation, now_us: int,
                evidence: list[str], snapshot: str | None, model: str | None = None) -> list[Alert]:
        """One observation at `now_us`: the timers due before it fire first (at their due
        time: the last observation is taken to hold until the next), then it is applied, then
        what is due now fires (`for: 0`, or a `for` that ends on this very event).

        `model`: the detection model that made it. Several models report on one frame: the
        instant holds if any of them holds, in whatever order they arrive, so a "no" that
        would end a hold waits until every model this key has seen said no, or the key's
        next instant comes."""
        alerts: list[Alert] = []
        if model is not None and model not in state.models:
            state.models = sorted([*state.models, model])
        pending, state.undecided = state.undecided, None
        if pending is not None and pending.at < now_us:  # its instant ended with no "yes": it stands
            alerts.extend(self._at(rule, group, state, Observation(holds=False, values=pending.values),
                                   pending.at, [], None))
            pending = None
        if seen.holds:
            state.held_at = now_us
        elif model is not None and state.holds:
            if state.held_at == now_us:
                return alerts  # another model saw it at this instant: it holds
            said_no = sorted({*(pending.said_no if pending else ()), model})
            if said_no != state.models:
                state.undecided = Undecided(now_us, seen.values, said_no)
                alerts.extend(self._advance(rule, group, state, now_us - 1))
                return alerts
        alerts.extend(self._at(rule, group, state, seen, now_us, evidence, snapshot))
        return alerts

    def _at(self, rule: Rule, group: str, state: KeyState, seen: Observation, now_us: int,
            evidence: list[str], snapshot: str | None) -> list[Alert]:
        alerts = self._advance(rule, group, state, now_us - 1)  # held (or not) until just before now
        self._apply(rule, state, seen, now_us, evidence, snapshot)
        alerts.extend(self._advance(rule, group, state, now_us))
        return alerts

    @staticmethod
    def _apply(rule: Rule, state: KeyState, seen: Observation, now_us: int, evidence: list[str],
               snapshot: str | None) -> None:
        holds = seen.holds and (rule.schedule is None or rule.schedule.active(from_us(now_us)))
        state.holds = holds
        if holds:
            state.false_since = state.clear_values = None
            if state.since is None:
                state.since = now_us
            if evidence:
                state.evidence = [*state.evidence, *evidence][-MAX_EVIDENCE:]
            if seen.values:
                state.values = seen.values
            if snapshot:
                state.snapshot = snapshot
        else:
            state.since = None
            if state.alert_id:
                if state.false_since is None:
                    state.false_since = now_us
                if seen.values:  # what no longer holds: the resolve reports it, not the peak
                    state.clear_values = seen.values
            else:
                state.evidence, state.values, state.snapshot = [], {}, None

    def _advance(self, rule: Rule, group: str, state: KeyState, until_us: int) -> list[Alert]:
        """The key's time reaches `until_us`: each timer due by then fires at its own due
        time, in order (fire, then a resolve, then reminders). A long gap in the data sends
        one reminder (the latest due), never a burst of past ones."""
        alerts: list[Alert] = []
        while True:
            if state.alert_id is None:  # the one timer of a key not firing: `for` (and cooldown)
                if not state.holds or state.since is None:
                    return alerts
                at, which = max(state.since + rule.for_us, state.cooldown_until or 0), 0
            else:
                at, which = until_us + 1, -1
                if state.false_since is not None:
                    at, which = state.false_since + rule.resolve_after_us, 1
                if rule.realert is not None and state.remind_at is not None and state.remind_at < at:
                    at, which = state.remind_at, 2
            if at > until_us:
                return alerts
            if which == 0:
                assert state.since is not None
                state.alert_id = str(alert_id_for(rule.id, group, from_us(state.since)))
                state.started = state.since
                state.muted = self._muted(rule, group, at)
                state.reminders = 0
                state.cooldown_until = None  # served
                if rule.realert is not None:
                    state.remind_at = at + int(rule.realert.delay_s(0) * US)
                alerts.append(self._alert(rule, group, state, "fired", at))
            elif which == 1:
                alerts.append(self._alert(rule, group, state, "resolved", at))
                state.clear_firing()
                state.cooldown_until = at + int(rule.cooldown * US) if rule.cooldown else None
            else:
                realert = rule.realert
                assert realert is not None
                reminders = state.reminders
                while True:  # skip to the latest reminder due by now
                    reminders += 1
                    following = at + int(realert.delay_s(reminders) * US)
                    if following > until_us:
                        break
                    at = following
                state.reminders = reminders
                state.remind_at = following
                state.muted = self._muted(rule, group, at)
                alerts.append(self._alert(rule, group, state, "fired", at))

    def _muted(self, rule: Rule, group: str, now_us: int) -> str | None:
        for other in rule.inhibited_by:
            other_state = self._load(group_key_of(other, group))
            if other_state is not None and other_state.alert_id:
                return f"inhibited by {other}"
        moment = from_us(now_us)
        for silence in self.silences:
            if silence.mutes(rule.id, group, moment):
                return f"silenced by {silence.id} until {silence.until.isoformat()}: {silence.reason}"
        return None

    @staticmethod
    def _alert(rule: Rule, group_key: str, state: KeyState, transition: str, now_us: int) -> Alert:
        assert state.alert_id is not None and state.started is not None
        alert_id = uuid.UUID(state.alert_id)
        reminder = state.reminders if transition == "fired" else 0
        now = from_us(now_us)
        values = state.values
        if transition == "resolved" and state.clear_values:
            values = state.clear_values
        return Alert(
            event_id=uuid.uuid5(alert_id, f"{transition}+{reminder}" if reminder else transition),
            source_id=group_key if rule.across_sources else (state.src or group_key),
            time=now,
            alert_id=alert_id,
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            state="fired" if transition == "fired" else "resolved",
            group_key=group_key,
            started_at=from_us(state.started),
            resolved_at=now if transition == "resolved" else None,
            reminder=reminder,
            muted=state.muted,
            labels=rule.labels,
            evidence=Evidence(event_ids=list(state.evidence), values=values, snapshot=state.snapshot),
            route=rule.route,
            notify=rule.notify,
            templates=rule.templates,
        )
