"""Streaming rule evaluation: condition held for a duration → fired; false long enough → resolved.

Time is event time (when the frame or reading happened), so a replay or a lagging
consumer decides exactly as live processing would. State per (rule, group key)
lives in any MutableMapping of plain JSON dicts: a dict in tests, a Faust table in
the worker (so a restarted worker neither forgets nor refires). Alert ids are
derived from rule, group key and firing start, so re-processing an event
reproduces the same alert instead of a second one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.events import Detection
from ingest.events import DataQuality, Event
from rules.events import Alert, Evidence
from rules.model import Observation, Rule

ALERT_NAMESPACE = uuid.UUID("6f1c9a52-3c1e-4b8e-9f57-4a8f0c3d2b11")
MAX_EVIDENCE = 10

State = dict[str, Any]


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_US


def from_us(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)


def alert_id_for(rule_id: str, group_key: str, started_at: datetime) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, f"{rule_id}|{group_key}|{started_at.isoformat()}")


def source_kind(event: Event) -> str:
    """camera / drone / sensor: what kind of source the event came from."""
    if isinstance(event, DataQuality):
        return event.source_kind or ""
    return str(getattr(event, "kind", ""))


class _Index:
    """Rules of one event type, by the source ids or kinds they select: an event meets only
    the rules that can match its source, so a thousand rules cost what a handful do."""

    def __init__(self) -> None:
        self.by_id: dict[str, list[Rule]] = defaultdict(list)
        self.by_kind: dict[str, list[Rule]] = defaultdict(list)
        self.any_source: list[Rule] = []

    def add(self, rule: Rule) -> None:
        if rule.sources.ids:
            for source_id in rule.sources.ids:
                self.by_id[source_id].append(rule)
        elif rule.sources.kinds:
            for kind in rule.sources.kinds:
                self.by_kind[kind].append(rule)
        else:
            self.any_source.append(rule)

    def candidates(self, source_id: str, kind: str) -> list[Rule]:
        return [*self.by_id.get(source_id, ()), *self.by_kind.get(kind, ()), *self.any_source]


class RuleEngine:
    def __init__(
        self, rules: Iterable[Rule], state: MutableMapping[str, State] | None = None
    ) -> None:
        self.state: MutableMapping[str, State] = {} if state is None else state
        self.replace_rules(rules)

    def replace_rules(self, rules: Iterable[Rule]) -> None:
        """Swap the rule set (hot reload). State is keyed by rule id and group, so a rule
        that is still there keeps its timers and its fired alert."""
        self._rules = [rule for rule in rules if rule.enabled]
        index: dict[type, _Index] = defaultdict(_Index)
        for rule in self._rules:
            for event_type in rule.event_types:
                index[event_type].add(rule)
        self._index = index

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    def evaluate(self, event: Event) -> list[Alert]:
        alerts: list[Alert] = []
        index = self._index.get(type(event))
        if index is None:
            return alerts
        kind = source_kind(event)
        now_us, event_id = to_us(event.time), str(event.event_id)  # once per event, not per rule
        for rule in index.candidates(event.source_id, kind):
            if not rule.sources.matches(event.source_id, kind):
                continue
            observation = rule.condition.observe(event)
            if observation is None:
                continue
            alert = self._step(rule, event, observation, now_us, event_id)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _step(self, rule: Rule, event: Event, seen: Observation, now_us: int, event_id: str) -> Alert | None:
        group_key = event.source_id
        key = f"{rule.id}|{group_key}"
        state: State = dict(self.state.get(key) or {})
        now = event.time  # now_us: the same in integer microseconds, exact and cheap to compare
        last = state.get("last")
        if last is not None and now_us < last:
            return None  # older than what this key already saw: cannot change the decision
        state["last"] = now_us
        alert = None
        if seen.holds:
            state.pop("false_since", None)
            since = state.setdefault("since", now_us)
            evidence = [*state.get("evidence", []), event_id][-MAX_EVIDENCE:]
            state["evidence"] = evidence
            state["values"] = seen.values
            if isinstance(event, Detection) and event.snapshot:
                state["snapshot"] = event.snapshot
            if not state.get("alert_id") and (now_us - since) / 1e6 >= rule.condition.for_:
                alert_id = alert_id_for(rule.id, group_key, from_us(since))
                state["alert_id"] = str(alert_id)
                alert = self._alert(rule, group_key, state, "fired", now)
        elif state.get("alert_id"):
            false_since = state.setdefault("false_since", now_us)
            if (now_us - false_since) / 1e6 >= rule.resolve_after:
                alert = self._alert(rule, group_key, state, "resolved", now)
                state = {"last": now_us}
        elif len(state) > 1:
            state = {"last": now_us}
        self.state[key] = state
        return alert

    @staticmethod
    def _alert(rule: Rule, group_key: str, state: State, transition: str, now: datetime) -> Alert:
        alert_id = uuid.UUID(state["alert_id"])
        started = from_us(state["since"])
        return Alert(
            event_id=uuid.uuid5(alert_id, transition),
            source_id=group_key,
            time=now,
            alert_id=alert_id,
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            state="fired" if transition == "fired" else "resolved",
            group_key=group_key,
            started_at=started,
            resolved_at=now if transition == "resolved" else None,
            labels=rule.labels,
            evidence=Evidence(event_ids=state.get("evidence", []), values=state.get("values", {}),
                              snapshot=state.get("snapshot")),
            notify=rule.notify,
        )
