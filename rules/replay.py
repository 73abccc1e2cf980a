"""Replay events through rules, as `citywatch rules test` does with stored history.

A fresh engine (no state) sees the events in time order; what it fires and resolves is
what the rules would have done. `compare` tells two rule versions apart by the alerts
only one of them produces.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass

from rules.engine import RuleEngine
from rules.events import Alert
from rules.model import Rule


async def replay(rules: Sequence[Rule], events: AsyncIterable[object]) -> list[Alert]:
    engine = RuleEngine(rules)
    alerts: list[Alert] = []
    async for event in events:
        alerts.extend(engine.evaluate(event))  # type: ignore[arg-type]
    return alerts


def alert_key(alert: Alert) -> tuple[str, str, str, str]:
    return (alert.rule_id, alert.group_key, alert.state, alert.started_at.isoformat())


@dataclass(frozen=True)
class Comparison:
    only_new: list[Alert]
    only_live: list[Alert]
    both: int


def compare(new: Sequence[Alert], live: Sequence[Alert]) -> Comparison:
    new_keys, live_keys = {alert_key(a) for a in new}, {alert_key(a) for a in live}
    return Comparison(
        only_new=[a for a in new if alert_key(a) not in live_keys],
        only_live=[a for a in live if alert_key(a) not in new_keys],
        both=len(new_keys & live_keys),
    )
