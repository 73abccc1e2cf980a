"""Streaming rule evaluation: condition held long enough → fired; reminded while it stays;
false long enough → resolved.

Time is event time (when the frame or reading happened), so a replay or a lagging
consumer decides exactly as live processing would; `tick` lets time alone decide too
(`for`, absence, resolve_after, reminders, windows emptying). State per (rule, group key)
lives in any MutableMapping of plain JSON dicts: a dict in tests, a Faust table in the
worker (so a restarted worker neither forgets nor refires). Alert ids are derived from
rule, group key and firing start, so re-processing an event reproduces the same alert
instead of a second one.

An engine can take every rule (tests, replays), only the per-source ones (the worker's
evaluate agent, partitioned by source), or only those that join sources by distance (the
correlate agent, partitioned by rule).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from detectors.events import Detection
from ingest.events import DataQuality, Event
from rules.base import Observation, Seen, SourceInfo
from rules.conditions import AbsenceCondition, CompositeCondition
from rules.events import Alert, Evidence
from rules.model import Rule
from rules.silences import Silence

ALERT_NAMESPACE = uuid.UUID("6f1c9a52-3c1e-4b8e-9f57-4a8f0c3d2b11")
MAX_EVIDENCE = 10
US = 1_000_000
AREA = "~"  # the group key of a cross-source rule's shared memory
ACTIVE = "*"  # the group key listing a rule's active zone/track groups of one source

State = dict[str, Any]
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


def _idle(state: State) -> bool:
    """Nothing pending for this key: not holding, not fired, no window memory, no cooldown."""
    return ("since" not in state and "alert_id" not in state and "cooldown_until" not in state
            and not any(state.get("m", {}).values()))


def _needs_tick(rule: Rule, state: State) -> bool:
    """Whether time alone can change anything for this key now (most keys: no)."""
    fired = "alert_id" in state
    return (("since" in state and not fired) or "false_since" in state or "remind_at" in state
            or (fired and rule.schedule is not None)
            or (rule.condition_ticks and any(state.get("m", {}).values())))


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
        state: MutableMapping[str, State] | None = None,
        sources: Mapping[str, SourceInfo] | None = None,
        silences: Iterable[Silence] = (),
        scope: Scope = "all",
    ) -> None:
        self.state: MutableMapping[str, State] = {} if state is None else state
        self.sources: Mapping[str, SourceInfo] = sources or {}
        self.scope = scope
        self.silences: list[Silence] = list(silences)
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

    def seen(self, event: Event) -> Seen:
        info = self.sources.get(event.source_id, NO_INFO)
        position = event.position if "position" in _fields(type(event)) else None  # type: ignore[attr-defined]
        return Seen(
            event=event, source_id=event.source_id, kind=source_kind(event) or info.kind,
            now_us=to_us(event.time), info=info,
            position=(position.lat, position.lon) if position is not None else None,
        )

    def evaluate(self, event: Event) -> list[Alert]:
        alerts: list[Alert] = []
        index = self._index.get(type(event))
        if index is None:
            return alerts
        seen = self.seen(event)  # once per event, not per rule
        for rule in index.matching(seen):
            if rule.across_sources:
                alerts.extend(self._evaluate_area(rule, seen))
            elif rule.group_by == "source" or not isinstance(event, Detection):
                alerts.extend(self._evaluate_group(rule, seen.source_id, seen))
            else:
                for group, view in self._split(rule, seen, event):
                    alerts.extend(self._evaluate_group(rule, group, view))
        return alerts

    def across_rules_for(self, event: Event) -> list[str]:
        """Ids of the rules joining sources that this event feeds: the worker forwards the
        event to them, keyed by rule, so one partition sees every source of a rule."""
        index = self._across_index.get(type(event))
        if index is None:
            return []
        seen = self.seen(event)
        return [rule.id for rule in index.matching(seen)]

    def _evaluate_group(self, rule: Rule, group: str, seen: Seen) -> list[Alert]:
        key = f"{rule.id}|{group}"
        stored = self.state.get(key)
        if stored is not None and seen.now_us < stored.get("last", seen.now_us):
            return []  # older than what this key already saw: cannot change the decision
        if stored is None:  # the common case of a quiet key: decide without building state
            memory: dict[str, Any] = {}
            observation = rule.condition.observe(seen, memory)
            if (observation is None or not observation.holds) and not memory:
                return []
            state: State = {"m": memory}
            was_idle = True
        else:  # mutated in place and stored again (a Faust table sees the assignment)
            was_idle = _idle(stored)
            state = stored
            observation = rule.condition.observe(seen, state.setdefault("m", {}))
        alerts: list[Alert] = []
        if observation is not None:
            snapshot = seen.event.snapshot if isinstance(seen.event, Detection) else None
            evidence = [seen.event_id] if observation.holds else []  # only a holding one keeps it
            alerts = self._decide(rule, group, state, observation, seen.now_us, evidence, snapshot)
        if was_idle and _idle(state):
            return alerts  # nothing to remember: no state write (a Faust table write each)
        state["last"] = seen.now_us
        state["src"] = seen.source_id
        self._save(rule, key, group, seen.source_id, state)
        return alerts

    def _evaluate_area(self, rule: Rule, seen: Seen) -> list[Alert]:
        condition = rule.condition
        assert isinstance(condition, CompositeCondition)
        area_key = f"{rule.id}|{AREA}"
        area: State = dict(self.state.get(area_key) or {"src": rule.id})
        decisions = condition.observe_area(seen, area.setdefault("m", {}))
        self.state[area_key] = area
        return self._apply_area(rule, decisions or {}, seen.now_us, seen.event_id)

    def _apply_area(self, rule: Rule, decisions: dict[str, Observation], now_us: int,
                    event_id: str | None) -> list[Alert]:
        alerts: list[Alert] = []
        for anchor, observation in decisions.items():
            key = f"{rule.id}|{anchor}"
            state: State = dict(self.state.get(key) or {"src": rule.id})
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
        active = (self.state.get(f"{rule.id}|{seen.source_id}{ACTIVE}") or {}).get("keys", [])
        for group in active:
            by_group.setdefault(group, [])
        views = []
        for group, boxes in by_group.items():
            view = event.model_copy(update={"boxes": tuple(boxes)})
            views.append((group, Seen(event=view, source_id=seen.source_id, kind=seen.kind,
                                      now_us=seen.now_us, info=seen.info,
                                      position=seen.position)))
        return views

    def _save(self, rule: Rule, key: str, group: str, source_id: str, state: State) -> None:
        if rule.group_by == "source":
            self.state[key] = state
            return
        registry_key = f"{rule.id}|{source_id}{ACTIVE}"
        registry = dict(self.state.get(registry_key) or {"src": source_id, "keys": []})
        keys: list[str] = list(registry["keys"])
        if _idle(state):  # zones and tracks come and go: forget idle ones
            if key in self.state:
                del self.state[key]
            if group in keys:
                keys.remove(group)
        else:
            self.state[key] = state
            if group not in keys:
                keys.append(group)
        if keys != registry["keys"]:
            registry["keys"] = keys
            self.state[registry_key] = registry

    # -- time ------------------------------------------------------------------------

    def tick(self, now: datetime, owns: Callable[[str], bool] | None = None) -> list[Alert]:
        """Let time pass: fire what has held for its `for`, resolve what has been false for
        `resolve_after`, remind, and notice silent sources. `owns(partition_key)` limits the
        work to the states this worker is responsible for."""
        now_us = to_us(now)
        alerts: list[Alert] = []
        self._expect_listed_sources(now_us, owns)
        for key, state in list(self.state.items()):
            rule_id, _, group = key.partition("|")
            rule = self._by_id.get(rule_id)
            if rule is None or not rule.ticks or group.endswith(ACTIVE):
                continue
            if owns is not None and not owns(state.get("src", group)):
                continue
            if now_us < state.get("last", 0) or now_us <= state.get("tick", 0):
                continue
            if rule.across_sources:
                if group == AREA:
                    alerts.extend(self._tick_area(rule, key, state, now_us))
                continue
            alerts.extend(self._tick_group(rule, key, group, state, now_us))
        return alerts

    def _tick_group(self, rule: Rule, key: str, group: str, state: State, now_us: int) -> list[Alert]:
        if not _needs_tick(rule, state):
            return []
        before, state = state, dict(state)
        observation = rule.condition.on_time(state.setdefault("m", {}), now_us)
        if observation is None:  # time alone passed: nothing new was observed
            observation = Observation(holds=bool(state.get("h")), values={})
        alerts = self._decide(rule, group, state, observation, now_us, [], None)
        if alerts or rule.condition_ticks or state != before:  # else: no table write
            state["tick"] = now_us
            self._save(rule, key, group, state.get("src", group), state)
        return alerts

    def _tick_area(self, rule: Rule, key: str, area: State, now_us: int) -> list[Alert]:
        condition = rule.condition
        assert isinstance(condition, CompositeCondition)
        area = dict(area)
        decisions = condition.area_on_time(area.setdefault("m", {}), now_us)
        self.state[key] = area
        for anchor_key, anchor_state in list(self.state.items()):
            anchor_rule, _, anchor = anchor_key.partition("|")
            if anchor_rule == rule.id and anchor != AREA and anchor_state.get("alert_id"):
                decisions.setdefault(anchor, Observation(holds=bool(anchor_state.get("h"))))
        return self._apply_area(rule, decisions, now_us, None)

    def joins_sources(self, rule_id: str) -> bool:
        """Whether the rule joins sources (its state lives where the correlate engine runs)."""
        return rule_id in self._across_ids

    def force_resolve(self, rule_id: str, group_key: str, alert_id: str, now: datetime,
                      by: str) -> list[Alert]:
        """An operator closes the alert by hand: it resolves now, and fires again only when
        its condition holds anew (a fresh `for`, after any cooldown)."""
        key = f"{rule_id}|{group_key}"
        state = self.state.get(key)
        rule = self._by_id.get(rule_id)
        if rule is None or not state or state.get("alert_id") != alert_id:
            return []  # not firing (any more), or not this firing: nothing to do
        state = dict(state)
        now_us = max(to_us(now), state.get("last", 0))
        state["muted"] = None
        alert = self._alert(rule, group_key, state, "resolved", now_us)
        alert = alert.model_copy(update={"evidence": alert.evidence.model_copy(
            update={"values": {**alert.evidence.values, "resolved_by": by}})})
        fresh: State = {"src": state.get("src", group_key), "last": state.get("last", now_us), "m": {}}
        if rule.cooldown:
            fresh["cooldown_until"] = now_us + int(rule.cooldown * US)
        self.state[key] = fresh
        return [alert]

    def _expect_listed_sources(self, now_us: int, owns: Callable[[str], bool] | None) -> None:
        """Absence rules naming their sources expect them from the start: a sensor that never
        reported is as dead as one that stopped."""
        for rule in self._rules:
            if not isinstance(rule.condition, AbsenceCondition):
                continue
            for source_id in rule.sources.ids:
                key = f"{rule.id}|{source_id}"
                if key not in self.state and (owns is None or owns(source_id)):
                    self.state[key] = {"src": source_id, "m": {"from": now_us}}

    # -- decisions -------------------------------------------------------------------

    def _decide(self, rule: Rule, group: str, state: State, seen: Observation, now_us: int,
                evidence: list[str], snapshot: str | None) -> list[Alert]:
        alerts: list[Alert] = []
        holds = seen.holds and (rule.schedule is None or rule.schedule.active(from_us(now_us)))
        state["h"] = holds
        if holds:
            state.pop("false_since", None)
            state.pop("clear_values", None)
            since = state.setdefault("since", now_us)
            if evidence:
                kept = state.setdefault("evidence", [])
                kept.extend(evidence)
                del kept[:-MAX_EVIDENCE]
            if seen.values:
                state["values"] = seen.values
            if snapshot:
                state["snapshot"] = snapshot
            if ("alert_id" not in state and now_us >= since + rule.for_us
                    and now_us >= state.get("cooldown_until", 0)):
                state["alert_id"] = str(alert_id_for(rule.id, group, from_us(since)))
                state["started"] = since
                state["muted"] = self._muted(rule, group, now_us)
                state["reminders"] = 0
                if rule.realert is not None:
                    state["remind_at"] = now_us + int(rule.realert.delay_s(0) * US)
                alerts.append(self._alert(rule, group, state, "fired", now_us))
        else:
            state.pop("since", None)
            if state.get("alert_id"):
                false_since = state.setdefault("false_since", now_us)
                if seen.values:  # what no longer holds: the resolve reports it, not the peak
                    state["clear_values"] = seen.values
                if now_us - false_since >= rule.resolve_after_us:
                    alerts.append(self._alert(rule, group, state, "resolved", now_us))
                    for field in ("alert_id", "started", "false_since", "evidence", "values", "snapshot",
                                  "muted", "reminders", "remind_at", "clear_values"):
                        state.pop(field, None)
                    if rule.cooldown:
                        state["cooldown_until"] = now_us + int(rule.cooldown * US)
            else:
                for field in ("evidence", "values", "snapshot"):
                    state.pop(field, None)
        realert = rule.realert
        if realert is not None and state.get("alert_id") and now_us >= state.get("remind_at", now_us + 1):
            state["reminders"] = reminders = state.get("reminders", 0) + 1
            state["remind_at"] = now_us + int(realert.delay_s(reminders) * US)
            state["muted"] = self._muted(rule, group, now_us)
            alerts.append(self._alert(rule, group, state, "fired", now_us))
        return alerts

    def _muted(self, rule: Rule, group: str, now_us: int) -> str | None:
        for other in rule.inhibited_by:
            if (self.state.get(f"{other}|{group}") or {}).get("alert_id"):
                return f"inhibited by {other}"
        moment = from_us(now_us)
        for silence in self.silences:
            if silence.mutes(rule.id, group, moment):
                return f"silenced by {silence.id} until {silence.until.isoformat()}: {silence.reason}"
        return None

    @staticmethod
    def _alert(rule: Rule, group_key: str, state: State, transition: str, now_us: int) -> Alert:
        alert_id = uuid.UUID(state["alert_id"])
        reminder = int(state.get("reminders", 0)) if transition == "fired" else 0
        now = from_us(now_us)
        values = state.get("values", {})
        if transition == "resolved" and state.get("clear_values"):
            values = state["clear_values"]
        return Alert(
            event_id=uuid.uuid5(alert_id, f"{transition}+{reminder}" if reminder else transition),
            source_id=group_key if rule.across_sources else state.get("src", group_key),
            time=now,
            alert_id=alert_id,
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            state="fired" if transition == "fired" else "resolved",
            group_key=group_key,
            started_at=from_us(state["started"]),
            resolved_at=now if transition == "resolved" else None,
            reminder=reminder,
            muted=state.get("muted"),
            labels=rule.labels,
            evidence=Evidence(event_ids=state.get("evidence", []), values=values,
                              snapshot=state.get("snapshot")),
            route=rule.route,
            notify=rule.notify,
            templates=rule.templates,
        )
