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
from datetime import datetime
from typing import Any

from detectors.events import Detection
from ingest.events import DataQuality, Event
from rules.events import Alert, Evidence
from rules.model import Observation, Rule

ALERT_NAMESPACE = uuid.UUID("6f1c9a52-3c1e-4b8e-9f57-4a8f0c3d2b11")
MAX_EVIDENCE = 10

State = dict[str, Any]


def alert_id_for(rule_id: str, group_key: str, started_at: datetime) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, f"{rule_id}|{group_key}|{started_at.isoformat()}")


def source_kind(event: Event) -> str:
    """camera / drone / sensor: what kind of source the event came from."""
    if isinstance(event, DataQuality):
        return event.source_kind or ""
    return str(getattr(event, "kind", ""))


class RuleEngine:
    def __init__(
        self, rules: Iterable[Rule], state: MutableMapping[str, State] | None = None
    ) -> None:
        self.state: MutableMapping[str, State] = {} if state is None else state
        self._by_type: dict[type, list[Rule]] = defaultdict(list)
        for rule in rules:
            if rule.enabled:
                for event_type in rule.event_types:
                    self._by_type[event_type].append(rule)

    @property
    def rules(self) -> list[Rule]:
        return [rule for rules in self._by_type.values() for rule in rules]

    def evaluate(self, event: Event) -> list[Alert]:
        alerts = []
        for rule in self._by_type.get(type(event), ()):
            if not rule.sources.matches(event.source_id, source_kind(event)):
                continue
            observation = rule.condition.observe(event)
            if observation is None:
                continue
            alert = self._step(rule, event, observation)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _step(self, rule: Rule, event: Event, seen: Observation) -> Alert | None:
        group_key = event.source_id
        key = f"{rule.id}|{group_key}"
        state: State = dict(self.state.get(key) or {})
        now = event.time
        last = state.get("last")
        if last is not None and now < datetime.fromisoformat(last):
            return None  # older than what this key already saw: cannot change the decision
        state["last"] = now.isoformat()
        alert = None
        if seen.holds:
            state.pop("false_since", None)
            since = state.setdefault("since", now.isoformat())
            evidence = [*state.get("evidence", []), str(event.event_id)][-MAX_EVIDENCE:]
            state["evidence"] = evidence
            state["values"] = seen.values
            if isinstance(event, Detection) and event.snapshot:
                state["snapshot"] = event.snapshot
            started = datetime.fromisoformat(since)
            if not state.get("alert_id") and (now - started).total_seconds() >= rule.condition.for_:
                alert_id = alert_id_for(rule.id, group_key, started)
                state["alert_id"] = str(alert_id)
                alert = self._alert(rule, group_key, state, "fired", now)
        else:
            if state.get("alert_id"):
                false_since = datetime.fromisoformat(state.setdefault("false_since", now.isoformat()))
                if (now - false_since).total_seconds() >= rule.resolve_after:
                    alert = self._alert(rule, group_key, state, "resolved", now)
                    state = {"last": state["last"]}
            else:
                state = {"last": state["last"]}
        self.state[key] = state
        return alert

    @staticmethod
    def _alert(rule: Rule, group_key: str, state: State, transition: str, now: datetime) -> Alert:
        alert_id = uuid.UUID(state["alert_id"])
        started = datetime.fromisoformat(state["since"])
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
