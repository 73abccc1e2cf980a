from datetime import UTC, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

from notifier.channel_registry import CHANNEL_KINDS
from notifier.channels import DeliveryError, Message
from notifier.dispatcher import Dispatcher, RetryPolicy
from notifier.log import InMemoryNotificationLog
from notifier.people import Person
from rules.events import Alert
from rules.model import NotifyTarget

NO_WAIT = RetryPolicy(attempts=3, base_delay_s=0, max_delay_s=0)


class FakeChannel:
    """Records sends; fails the first `failures` calls with the given permanence."""

    def __init__(self, name: str, failures: int = 0, permanent: bool = False) -> None:
        self.name = name
        self.form = CHANNEL_KINDS[name].form(None)
        self.failures = failures
        self.permanent = permanent
        self.sent: list[tuple[str, Message]] = []
        self.calls = 0

    async def send(self, address: str, message: Message) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise DeliveryError("provider said no", permanent=self.permanent)
        self.sent.append((address, message))
        return f"id-{self.calls}"


def alert(*targets: NotifyTarget) -> Alert:
    now = datetime.now(UTC)
    return Alert(source_id="cam-1", time=now, alert_id=uuid4(), rule_id="crowd", title="Crowd forming",
                 severity="warning", state="fired", group_key="cam-1", started_at=now, notify=list(targets))


RECIPIENTS = {"ops": Person(email="ops@example.org", phone="+15551234567")}


async def test_each_recipient_channel_gets_one_message_and_redelivery_sends_nothing() -> None:
    email, sms = FakeChannel("email"), FakeChannel("sms")
    dispatcher = Dispatcher({"email": email, "sms": sms}, RECIPIENTS, InMemoryNotificationLog(), NO_WAIT)
    the_alert = alert(NotifyTarget(recipient="ops", channels=["email", "sms"]))
    first = await dispatcher.dispatch(the_alert)
    again = await dispatcher.dispatch(the_alert)  # the alert delivered twice (at-least-once)
    assert sorted(n.status for n in first) == ["sent", "sent"]
    assert sorted(n.status for n in again) == ["duplicate", "duplicate"]
    assert len(email.sent) == 1 and len(sms.sent) == 1
    assert "Crowd forming" in sms.sent[0][1].text and len(sms.sent[0][1].text) <= 160
    assert all("+1555" not in (n.address or "") or "***" in n.address for n in first)


async def test_transient_failures_are_retried_then_succeed() -> None:
    email = FakeChannel("email", failures=2)
    dispatcher = Dispatcher({"email": email}, RECIPIENTS, InMemoryNotificationLog(), NO_WAIT)
    [outcome] = await dispatcher.dispatch(alert(NotifyTarget(recipient="ops", channels=["email"])))
    assert (outcome.status, outcome.attempts) == ("sent", 3)


async def test_permanent_failure_is_not_retried() -> None:
    sms = FakeChannel("sms", failures=5, permanent=True)
    dispatcher = Dispatcher({"sms": sms}, RECIPIENTS, InMemoryNotificationLog(), NO_WAIT)
    [outcome] = await dispatcher.dispatch(alert(NotifyTarget(recipient="ops", channels=["sms"])))
    assert (outcome.status, outcome.attempts, sms.calls) == ("failed", 1, 1)
    assert outcome.error == "provider said no"


async def test_unknown_recipient_or_channel_is_reported_not_dropped() -> None:
    dispatcher = Dispatcher({}, RECIPIENTS, InMemoryNotificationLog(), NO_WAIT)
    outcomes = await dispatcher.dispatch(alert(NotifyTarget(recipient="nobody", channels=["email"]),
                                               NotifyTarget(recipient="ops", channels=["sms"])))
    assert [(o.status, o.error) for o in outcomes] == [
        ("failed", "unknown recipient 'nobody'"), ("failed", "channel 'sms' is not configured")]


async def test_sms_falls_over_to_email_after_repeated_failures() -> None:
    email, sms = FakeChannel("email"), FakeChannel("sms", failures=99)
    dispatcher = Dispatcher({"email": email, "sms": sms}, RECIPIENTS, InMemoryNotificationLog(), NO_WAIT,
                            failover_after=3)
    [outcome] = await dispatcher.dispatch(alert(NotifyTarget(recipient="ops", channels=["sms"])))
    assert (outcome.channel, outcome.status) == ("email", "sent")
    assert outcome.error is not None and outcome.error.startswith("failover from SMS")
    assert sms.calls == 3 and len(email.sent) == 1


async def test_quiet_hours_hold_back_warnings_but_not_critical_alerts() -> None:
    from notifier.people import QuietHours

    always_quiet = QuietHours(start="00:00", end="23:59")
    people = {"ops": Person(email="ops@example.org", quiet_hours=always_quiet)}
    email = FakeChannel("email")
    dispatcher = Dispatcher({"email": email}, people, InMemoryNotificationLog(), NO_WAIT)
    target = NotifyTarget(recipient="ops", channels=["email"])
    [held] = await dispatcher.dispatch(alert(target))
    [sent] = await dispatcher.dispatch(alert(target).model_copy(update={"severity": "critical"}))
    assert (held.status, sent.status) == ("quiet", "sent") and len(email.sent) == 1


async def test_each_escalation_step_is_its_own_delivery() -> None:
    from notifier.escalation import Delivery

    email = FakeChannel("email")
    dispatcher = Dispatcher({"email": email}, RECIPIENTS, InMemoryNotificationLog(), NO_WAIT)
    the_alert = alert()
    outcomes = [await dispatcher.dispatch(the_alert, [Delivery("ops", "email", step)]) for step in (0, 1, 1)]
    assert [o.status for [o] in outcomes] == ["sent", "sent", "duplicate"]
    assert [o.step for [o] in outcomes] == [0, 1, 1]


async def test_a_channel_that_fails_unexpectedly_fails_that_delivery_only() -> None:
    class Broken(FakeChannel):
        async def send(self, address: str, message: Message) -> str:
            raise KeyError("a bug this message trips")

    email, sms = Broken("email"), FakeChannel("sms")
    dispatcher = Dispatcher({"email": email, "sms": sms}, RECIPIENTS, InMemoryNotificationLog(), NO_WAIT)
    target = NotifyTarget.model_validate({"recipient": "ops", "channels": ["email", "sms"]})
    outcomes = {o.channel: o for o in await dispatcher.dispatch(alert(target))}
    assert outcomes["sms"].status == "sent"
    assert outcomes["email"].status == "failed" and "KeyError" in (outcomes["email"].error or "")
    assert await dispatcher.retry_due() == []  # permanent: the outbox does not try it again


async def test_each_recipient_reads_times_in_their_own_zone() -> None:
    people = {"ana": Person(phone="+15551234567", timezone="Europe/Berlin"),
              "bo": Person(phone="+15551234568")}
    sms = FakeChannel("sms")
    dispatcher = Dispatcher({"sms": sms}, people, InMemoryNotificationLog(), NO_WAIT)
    targets = [NotifyTarget.model_validate({"recipient": name, "channels": ["sms"]}) for name in people]
    fired = alert(*targets)
    await dispatcher.dispatch(fired)
    texts = {address: message.text for address, message in sms.sent}
    berlin = fired.time.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M %Z")
    assert berlin in texts["+15551234567"] and fired.time.strftime("%H:%M UTC") in texts["+15551234568"]
