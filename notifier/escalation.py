"""Escalation: notify step by step until somebody acknowledges.

A routed alert (`route:` names a policy) starts at step 0; every `wait` without an
acknowledgement moves it to the next step (repeating the steps `repeat` times). The
state per alert is plain JSON in any MutableMapping (a Faust table in the worker, so a
restarted worker continues the escalation where it was). A resolve goes to everyone who
was notified, on the channels they were notified on.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.people import Directory, EscalationPolicy
from rules.events import Alert

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
State = dict[str, Any]


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Delivery:
    recipient: str
    channel: str
    step: int = 0  # which escalation step (0 for direct notification)


@dataclass(frozen=True)
class Due:
    alert: Alert
    deliveries: list[Delivery]


class Escalator:
    def __init__(self, directory: Directory, state: MutableMapping[str, State] | None = None) -> None:
        self.directory = directory
        self.state: MutableMapping[str, State] = {} if state is None else state

    def policy_for(self, alert: Alert) -> EscalationPolicy | None:
        return self.directory.policies.get(alert.route) if alert.route else None

    def _deliveries(self, policy: EscalationPolicy, step: int, at: datetime) -> list[Delivery]:
        spec = policy.steps[step % len(policy.steps)]
        people = dict.fromkeys(p for target in spec.notify for p in self.directory.resolve(target, at))
        return [Delivery(person, channel, step) for person in people for channel in spec.channels]

    def start(self, alert: Alert, now: datetime) -> list[Delivery]:
        """The first step of a newly fired alert (nothing when it is already escalating)."""
        policy = self.policy_for(alert)
        key = str(alert.alert_id)
        if policy is None or key in self.state:
            return []
        deliveries = self._deliveries(policy, 0, now)
        self.state[key] = {
            "alert": alert.model_dump(mode="json"), "step": 0, "src": alert.kafka_key,
            "next_at": _us(now) + int(policy.steps[0].wait * 1e6),
            "notified": sorted({(d.recipient, d.channel) for d in deliveries}),
        }
        return deliveries

    def on_alert(self, alert: Alert, now: datetime) -> list[Delivery] | None:
        """Who hears of this alert message now, when its rule routes to a policy: a firing
        starts the escalation (step 0), a reminder goes to everyone notified so far, a resolve
        to everyone told it fired (and ends the escalation). None: no policy (or muted), the
        rule's own `notify:` targets decide."""
        if self.policy_for(alert) is None or alert.muted:
            return None
        if alert.state == "resolved":
            return self.resolve(alert)
        if alert.reminder:
            return self.notified(str(alert.alert_id))
        return self.start(alert, now)

    def acknowledge(self, alert_id: str, by: str) -> bool:
        """Stop escalating; True when this alert was escalating and is now stopped."""
        state = self.state.get(alert_id)
        if not state or state.get("acked_by"):
            return False
        self.state[alert_id] = {**state, "acked_by": by}
        return True

    def notified(self, alert_id: str) -> list[Delivery]:
        """Everyone notified so far (reminders go to them)."""
        state = self.state.get(alert_id) or {}
        return [Delivery(recipient, channel, 0) for recipient, channel in state.get("notified", [])]

    def resolve(self, alert: Alert) -> list[Delivery]:
        """Everyone who was told it fired hears it resolved; the escalation ends."""
        key = str(alert.alert_id)
        state = self.state.get(key)
        if not state:
            return []
        del self.state[key]
        return [Delivery(recipient, channel, 0) for recipient, channel in state.get("notified", [])]

    def due(self, now: datetime, owns: Callable[[str], bool] | None = None) -> list[Due]:
        """Steps whose wait has passed without an acknowledgement."""
        now_us = _us(now)
        found: list[Due] = []
        for key, state in list(self.state.items()):
            if "next_at" not in state or state.get("acked_by") or state.get("done"):
                continue  # not an escalation (the table is shared), or over
            if now_us < state["next_at"]:
                continue
            if owns is not None and not owns(state["src"]):
                continue
            alert = Alert.model_validate(state["alert"])
            policy = self.policy_for(alert)
            step = state["step"] + 1
            if policy is None or step >= len(policy.steps) * (policy.repeat + 1):
                self.state[key] = {**state, "done": True}
                continue
            deliveries = self._deliveries(policy, step, now)
            notified = {(n[0], n[1]) for n in state.get("notified", [])}
            notified |= {(d.recipient, d.channel) for d in deliveries}
            self.state[key] = {**state, "step": step, "notified": sorted(notified),
                               "next_at": now_us + int(policy.steps[step % len(policy.steps)].wait * 1e6)}
            found.append(Due(alert, deliveries))
        return found
