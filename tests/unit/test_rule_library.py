"""The live rule set from rules-topic messages; clock partitions; rule templates and muting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from aiokafka.partitioner import DefaultPartitioner

from citywatch.clock import decode_tick, encode_tick, owner_of, partition_of
from ingest.events import EventFormatError
from notifier.dispatcher import Dispatcher
from notifier.log import InMemoryNotificationLog
from notifier.people import Person
from notifier.templates import render
from rules.engine import RuleEngine
from rules.events import Alert
from rules.library import (
    RuleFileVersion,
    RuleLibrary,
    RulesMessageError,
    SilenceChange,
    decode_rules_message,
    encode_rules_message,
)
from rules.silences import Silence
from tests.unit.rule_helpers import detection, rule

NOW = datetime(2026, 11, 24, 9, tzinfo=UTC)
CROWD = "id: crowd\ntitle: Crowd\ncondition: {type: detection, classes: [person], min_count: 3}\n"


def version(name: str, content: str | None, author: str = "ana") -> RuleFileVersion:
    return RuleFileVersion(name=name, content=content, author=author, published_at=NOW)


def test_valid_versions_apply_invalid_ones_keep_the_previous_and_deletes_remove() -> None:
    library = RuleLibrary()
    assert library.apply(version("crowd.yaml", CROWD)).rules_changed
    assert [r.title for r in library.rules()] == ["Crowd"]
    refused = library.apply(version("crowd.yaml", CROWD.replace("min_count: 3", "min_count: x")))
    assert not refused.rules_changed and "condition.min_count" in str(refused.errors[0])
    assert [r.title for r in library.rules()] == ["Crowd"]
    assert not library.apply(version("crowd.yaml", CROWD)).rules_changed  # same text: nothing to do
    clash = library.apply(version("other.yaml", CROWD.replace("Crowd", "Other")))
    assert "already defined" in str(clash.errors[0]) and len(library.rules()) == 1
    assert library.apply(version("crowd.yaml", None)).rules_changed
    assert [r.title for r in library.rules()] == ["Other"]  # the clash resolved itself


def test_silences_set_and_lift() -> None:
    library = RuleLibrary()
    silence = Silence(id="s1", rule_id="crowd", until=NOW + timedelta(hours=1), reason="r", created_by="ana")
    assert library.apply(SilenceChange(id="s1", silence=silence, by="ana", at=NOW)).silences_changed
    assert library.active_silences(NOW) == [silence]
    assert library.active_silences(NOW + timedelta(hours=2)) == []
    assert library.apply(SilenceChange(id="s1", silence=None, by="bo", at=NOW)).silences_changed
    assert library.silences == {}


def test_rules_messages_round_trip_and_garbage_is_refused() -> None:
    message = version("a/b.yaml", CROWD)
    assert decode_rules_message(encode_rules_message(message)) == message
    assert message.key == "file:a/b.yaml" and len(message.sha256) == 64
    with pytest.raises(RulesMessageError):
        decode_rules_message(b'{"kind": "rule_file", "name": "../../etc/passwd"}')
    with pytest.raises(RulesMessageError):
        decode_rules_message(b"not json")


def test_clock_partitions_match_kafkas_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for key in (f"cam-{i}" for i in range(50)):
        assert partition_of(key, 4) == partitioner(key.encode(), [0, 1, 2, 3], [0, 1, 2, 3])
    owners = [owner_of(p, 4) for p in range(4)]
    assert all(sum(owns(f"s{i}") for owns in owners) == 1 for i in range(20))
    assert decode_tick(encode_tick(NOW)) == NOW
    with pytest.raises(EventFormatError):
        decode_tick(b'{"tick": "2026-11-24T09:00:00"}')


def fired(text: str) -> Alert:
    (alert,) = RuleEngine([rule(text)]).evaluate(detection(0, 3))
    return alert


def test_rule_templates_replace_the_default_texts_and_a_broken_one_falls_back() -> None:
    alert = fired(CROWD + "templates:\n  sms: 'Crowd of {{ values.count }} at {{ alert.group_key }}'\n"
                  "  email_subject: 'Crowd ({{ values.count }})'\n")
    assert render("sms", alert).text == "Crowd of 3 at cam-1"
    assert render("email", alert).subject == "Crowd (3)"
    assert "Alert fired: Crowd" in render("email", alert).text  # no body template: the default
    broken = fired(CROWD + "templates: {sms: '{{ values.count | no_such_filter }}'}\n")
    assert render("sms", broken).text.startswith("WARNING: Crowd @ cam-1")


async def test_muted_alerts_are_recorded_not_sent() -> None:
    class Failing:
        async def send(self, address: str, message: object) -> str:
            raise AssertionError("a muted alert must not be sent")

    alert = fired(CROWD + "notify: [{recipient: ops, channels: [email, sms]}]\n").model_copy(
        update={"muted": "silenced by s1"})
    recipients = {"ops": Person(email="o@example.org", phone="+15550001111")}
    dispatcher = Dispatcher({"email": Failing(), "sms": Failing()},  # type: ignore[dict-item]
                            recipients, InMemoryNotificationLog())
    outcomes = await dispatcher.dispatch(alert)
    assert [(o.channel, o.status, o.error) for o in outcomes] == [
        ("email", "muted", "silenced by s1"), ("sms", "muted", "silenced by s1")]


def test_reminders_are_their_own_delivery_round() -> None:
    alert = fired(CROWD)
    reminder = alert.model_copy(update={"reminder": 2, "event_id": uuid4()})
    assert (alert.delivery_round, reminder.delivery_round) == ("fired", "fired+2")
    assert render("sms", reminder).text.startswith("REMINDER 2:")
