"""The one form of the key that names a rule's group: `rule_id|group_key`.

It keys a group's rule state in the engine's table and the alerts (and acknowledgements and
comments) on Kafka, so an alert's transitions, its escalation and its acknowledgement share
a partition. Rule ids cannot contain `|` (rules/model.py), so the first one splits it.
"""

from __future__ import annotations

SEPARATOR = "|"


def group_key_of(rule_id: str, group_key: str) -> str:
    return f"{rule_id}{SEPARATOR}{group_key}"


def rule_of(key: str) -> str:
    return key.partition(SEPARATOR)[0]


def group_of(key: str) -> str:
    return key.partition(SEPARATOR)[2]
