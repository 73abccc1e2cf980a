"""Notification endpoints of the console: acknowledge (API and signed email links), who is
on call, and Twilio's webhooks (delivery receipts, SMS replies), signatures checked."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from citywatch.acks import AlertRef, acknowledge, last_alert_sent_to, locate
from citywatch.console.auth import AsOperator, viewer
from citywatch.rulebook import publish_rules_message
from citywatch.settings import Settings
from notifier.acklinks import verify_link
from notifier.events import AlertComment, DeliveryReceipt, mask
from notifier.voice import ACK_DIGIT
from rules.duration import parse_duration
from rules.events import ResolveRequest
from rules.library import SilenceChange
from rules.silences import Silence
from storage.people import audit

ACK_WORDS = ("ACK", "OK", "YES", "TAKEN")


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class CommentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000)


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration: str = Field(description="e.g. 30m, 2h, 1d")
    reason: str = Field(min_length=1, max_length=500)
    group_key: str | None = Field(default=None, max_length=200)


def _twiml(text: str) -> Response:
    from xml.sax.saxutils import escape

    body = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(text)}</Message></Response>'
    return Response(body, media_type="application/xml")


def _twiml_voice(text: str) -> Response:
    """What the call says after the key press."""
    response = VoiceResponse()
    response.say(text)
    return Response(str(response), media_type="application/xml")


async def _where(request: Request, alert_id: UUID) -> AlertRef:
    """An alert's rule, group key and source: from the live feed, else the database."""
    ref = await locate(request.app.state.pool, alert_id, _recent(request))
    if ref is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return ref


def _recent(request: Request) -> Mapping[str, AlertRef] | None:
    """The alerts the console's live feed has seen (absent when it has no feed)."""
    feed = getattr(request.app.state, "feed", None)
    return feed.recent if feed is not None else None


def notify_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    directory = settings.directory

    async def _twilio_form(request: Request, channel: str = "sms") -> dict[str, str]:
        """The form Twilio posted, after checking its signature against the auth token of the
        channel's account (sms, or voice)."""
        account = getattr(settings.channels, channel)
        token = getattr(account, "auth_token", None)
        if token is None or settings.console.public_url is None:
            raise HTTPException(404, f"Twilio webhooks need channels.{channel} and console.public_url")
        form = {key: str(value) for key, value in (await request.form()).items()}
        url = settings.console.public_url.rstrip("/") + request.url.path
        if request.url.query:  # Twilio signs the full URL it posted to, query string included
            url += "?" + request.url.query
        validator = RequestValidator(token.get_secret_value())
        if not validator.validate(url, form, request.headers.get("X-Twilio-Signature", "")):
            raise HTTPException(403, "invalid Twilio signature")
        return form

    @router.post("/api/alerts/{alert_id}/ack", status_code=202)
    async def ack(alert_id: UUID, body: AckRequest, request: Request, user: AsOperator) -> dict[str, Any]:
        """Take an alert as the signed-in operator: its escalation stops."""
        pool = request.app.state.pool
        done = await acknowledge(pool, request.app.state.publisher, alert_id, user.name, "console", body.note,
                                 known=_recent(request))
        if done is None:
            raise HTTPException(404, f"no alert {alert_id}")
        await audit(pool, user.name, "acknowledge", str(alert_id), {"note": body.note})
        return done.model_dump(mode="json")

    @router.post("/api/alerts/{alert_id}/comment", status_code=201)
    async def comment(
        alert_id: UUID, body: CommentRequest, request: Request, user: AsOperator
    ) -> dict[str, Any]:
        """A note on the alert, for everyone watching it and for its timeline."""
        ref = await _where(request, alert_id)
        note = AlertComment(source_id=ref.source_id, time=datetime.now(UTC), alert_id=alert_id,
                            rule_id=ref.rule_id, group_key=ref.group_key, by=user.name, text=body.text)
        await request.app.state.publisher.send("acks", note.kafka_key.encode(), note.to_json())
        await audit(request.app.state.pool, user.name, "comment", str(alert_id), {"text": body.text})
        return note.model_dump(mode="json")

    @router.post("/api/alerts/{alert_id}/resolve", status_code=202)
    async def resolve(
        alert_id: UUID, body: CommentRequest, request: Request, user: AsOperator
    ) -> dict[str, Any]:
        """Close an alert by hand (the reason is the text); the worker holding its rule state
        resolves it, and it fires again only if its condition holds anew."""
        ref = await _where(request, alert_id)
        closing = ResolveRequest(source_id=ref.source_id, time=datetime.now(UTC), alert_id=alert_id,
                                 rule_id=ref.rule_id, group_key=ref.group_key, by=user.name, reason=body.text)
        await request.app.state.publisher.send("telemetry", ref.source_id.encode(), closing.to_json())
        await audit(request.app.state.pool, user.name, "resolve", str(alert_id), {"reason": body.text})
        return closing.model_dump(mode="json")

    @router.post("/api/rules/{rule_id}/silence", status_code=201)
    async def silence(
        rule_id: str, body: SilenceRequest, request: Request, user: AsOperator
    ) -> dict[str, Any]:
        """Mute a rule (or one key of it) for a while: alerts are kept, nobody is notified."""
        try:
            seconds = parse_duration(body.duration)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        now = datetime.now(UTC)
        muted = Silence(id=f"s-{uuid4().hex[:12]}", rule_id=rule_id, group_key=body.group_key,
                        until=now + timedelta(seconds=seconds), reason=body.reason, created_by=user.name)
        await publish_rules_message(request.app.state.publisher,
                                    SilenceChange(id=muted.id, silence=muted, by=user.name, at=now))
        await audit(request.app.state.pool, user.name, "silence", rule_id, muted.model_dump(mode="json"))
        return muted.model_dump(mode="json")

    @router.get("/ack/{alert_id}", response_class=HTMLResponse)
    async def ack_link(alert_id: UUID, request: Request, by: str, exp: str, sig: str) -> HTMLResponse:
        secret = settings.console.ack_secret
        if secret is None or not verify_link(secret.get_secret_value(), str(alert_id), by, exp, sig):
            raise HTTPException(403, "this acknowledgement link is invalid or has expired")
        done = await acknowledge(request.app.state.pool, request.app.state.publisher, alert_id, by, "email")
        if done is None:
            raise HTTPException(404, f"no alert {alert_id}")
        return HTMLResponse(f"<p>Acknowledged by {html.escape(by)}. The escalation stops.</p>")

    @router.post("/ack/{alert_id}")
    async def ack_by_phone(alert_id: UUID, request: Request, by: str, exp: str, sig: str) -> Response:
        """The key pressed in an alert call (notifier/voice.py): Twilio posts it to the same
        signed link an email carries, itself signed by Twilio; 1 acknowledges as the person called."""
        form = await _twilio_form(request, "voice")
        secret = settings.console.ack_secret
        if secret is None or not verify_link(secret.get_secret_value(), str(alert_id), by, exp, sig):
            return _twiml_voice("This acknowledgement has expired.")
        if form.get("Digits") != ACK_DIGIT:
            return _twiml_voice("Not acknowledged.")
        done = await acknowledge(request.app.state.pool, request.app.state.publisher, alert_id, by, "voice")
        if done is None:
            return _twiml_voice("This alert is not known.")
        return _twiml_voice(f"Acknowledged, {by}. The escalation stops. Goodbye.")

    @router.get("/api/oncall", dependencies=[Depends(viewer)])
    async def oncall(at: datetime | None = None) -> dict[str, str | None]:
        moment = at if at is not None and at.tzinfo else datetime.now(UTC)
        return {name: schedule.on_call(moment) for name, schedule in directory.schedules.items()}

    @router.post("/twilio/status")
    async def twilio_status(request: Request) -> dict[str, str]:
        form = await _twilio_form(request)
        receipt = DeliveryReceipt(
            source_id="twilio", time=datetime.now(UTC), provider_id=form.get("MessageSid", "?"),
            status=form.get("MessageStatus", "unknown"), error_code=form.get("ErrorCode") or None,
            to=mask(form.get("To", "")))
        publisher = request.app.state.publisher
        await publisher.send("notifications", receipt.provider_id.encode(), receipt.to_json())
        return {"status": "stored"}

    @router.post("/twilio/inbound")
    async def twilio_inbound(request: Request) -> Response:
        """A reply to an alert SMS: 'ACK' takes the last alert sent to that phone."""
        form = await _twilio_form(request)
        sender = form.get("From", "")
        person = next((name for name, p in directory.people.items() if p.phone == sender), None)
        if person is None:
            return _twiml("This number is not on the CityWatch rota.")
        if form.get("Body", "").strip().upper().split(" ")[0] not in ACK_WORDS:
            return _twiml("Reply ACK to acknowledge the last alert.")
        alert_id = await last_alert_sent_to(request.app.state.pool, person)
        if alert_id is None:
            return _twiml("No alert to acknowledge.")
        await acknowledge(request.app.state.pool, request.app.state.publisher, alert_id, person, "sms")
        return _twiml(f"Acknowledged, {person}. Escalation stopped.")

    return router
