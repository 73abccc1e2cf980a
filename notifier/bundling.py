"""Bundling: the first alert of a rule goes out at once; more of the same rule within the
window wait and go out together as one message when it closes (twenty cameras seeing
the same smoke make one SMS, not twenty). State is plain JSON in a MutableMapping (a
Faust table in the worker), keyed by rule; in a worker each partition bundles the alerts
it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.events import Alert, Evidence

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LISTED = 20


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


class Bundler:
    def __init__(self, window_s: float, state: MutableMapping[str, dict[str, Any]] | None = None) -> None:
        self.window_us = int(window_s * 1e6)
        self.state: MutableMapping[str, dict[str, Any]] = {} if state is None else state

    def offer(self, alert: Alert, now: datetime) -> bool:
        """True: send it now (the first of its window); False: held for the bundle."""
        if self.window_us <= 0 or alert.state != "fired" or alert.reminder or alert.route:
            return True
        key = f"bundle|{alert.rule_id}"
        state = self.state.get(key)
        now_us = _us(now)
        if state is None or now_us >= state["until"]:
            self.state[key] = {"until": now_us + self.window_us, "src": alert.kafka_key, "held": []}
            return True
        held = [*state["held"], alert.model_dump(mode="json")]
        self.state[key] = {**state, "held": held}
        return False

    def due(self, now: datetime, owns: Callable[[str], bool] | None = None) -> list[Alert]:
        """One bundled alert per closed window that held alerts back."""
        now_us = _us(now)
        bundles = []
        for key, state in list(self.state.items()):
            if not key.startswith("bundle|") or now_us < state["until"]:
                continue
            if owns is not None and not owns(state["src"]):
                continue
            del self.state[key]
            if state["held"]:
                bundles.append(bundle([Alert.model_validate(a) for a in state["held"]]))
        return bundles


def bundle(alerts: list[Alert]) -> Alert:
    """Alerts of one rule as one alert (a deterministic id, so a redelivery is a duplicate)."""
    first = alerts[0]
    where = sorted({a.group_key for a in alerts})
    bundle_id = uuid.uuid5(first.alert_id, "|".join(sorted(str(a.alert_id) for a in alerts)))
    more = len(where) - MAX_LISTED
    listed = ", ".join(where[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")
    return first.model_copy(update={
        "event_id": uuid.uuid5(bundle_id, "fired"), "alert_id": bundle_id, "group_key": listed,
        "title": f"{len(alerts)} more: {first.title}", "time": max(a.time for a in alerts),
        "evidence": Evidence(event_ids=[e for a in alerts for e in a.evidence.event_ids][:10],
                             values={"alerts": len(alerts), "where": where[:MAX_LISTED]}),
    })
