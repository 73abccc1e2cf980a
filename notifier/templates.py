"""Default message texts per channel, rendered in Jinja2's sandbox.

SMS is short (one segment where possible: severity, title, where, key values);
email carries the full story. Templates are sandboxed because rule authors will be
supply their own (`templates:` in a rule), and a template must never reach Python internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from notifier import segments
from notifier.channel_kinds import MessageForm
from notifier.channel_registry import CHANNEL_KINDS
from notifier.channels import Message
from rules.events import Alert
from rules.model import Templates

log = logging.getLogger(__name__)

_env = SandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)

def show(value: Any) -> str:
    """A value of an alert's evidence as plain text: `k=v` pairs, a composite's parts
    separated by `|`, a missing part as `-`; never a Python repr."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " ".join(show(v) if k == "parts" else f"{k}={show(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if any(isinstance(v, dict) or v is None for v in value):
            return " | ".join(show(v) for v in value)
        return ",".join(show(v) for v in value)
    return str(value)


_env.filters["show"] = show
_HIDDEN_IN_SMS = ("classes", "unit", "model")

SMS_TEMPLATE = _env.from_string(
    "{{ 'RESOLVED' if alert.state == 'resolved' else alert.severity.upper() }}: "
    "{{ alert.title }} @ {{ alert.group_key }}"
    "{% for k, v in values.items() if k not in hidden %} {{ show({k: v}) }}{% endfor %}"
    " {{ when(alert.time) }}"
)

EMAIL_SUBJECT = _env.from_string(
    "[CityWatch {{ alert.severity }}] {{ 'Resolved: ' if alert.state == 'resolved' else '' }}"
    "{{ alert.title }} ({{ alert.group_key }})"
)

EMAIL_BODY = _env.from_string(
    """Alert {{ alert.state }}: {{ alert.title }}

Rule:      {{ alert.rule_id }}
Severity:  {{ alert.severity }}
Source:    {{ alert.group_key }}
Started:   {{ stamp(alert.started_at) }}
{% if alert.resolved_at %}Resolved:  {{ stamp(alert.resolved_at) }}
{% endif %}
Values:
{% for k, v in values.items() %}  {{ k }}: {{ v | show }}
{% endfor %}
Evidence events: {{ alert.evidence.event_ids | length }}
Alert id: {{ alert.alert_id }}
"""
)

_html_env = SandboxedEnvironment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

EMAIL_HTML = _html_env.from_string(
    """<!doctype html>
<html><body style="font-family: sans-serif">
<h2 style="color: {{ colour }}">
{{ 'Resolved' if alert.state == 'resolved' else alert.severity | capitalize }}: {{ alert.title }}</h2>
<p>{{ alert.group_key }} &middot; started {{ stamp(alert.started_at) }}
{% if alert.resolved_at %} &middot; resolved {{ stamp(alert.resolved_at) }}{% endif %}</p>
{% if body %}<pre>{{ body }}</pre>{% endif %}
<table>{% for k, v in values.items() %}
<tr><th align="left">{{ k }}</th><td>{{ show(v) }}</td></tr>{% endfor %}</table>
{% if snapshot %}<p><img src="cid:snapshot" alt="evidence snapshot" style="max-width: 100%"></p>{% endif %}
{% if ack_url %}<p><a href="{{ ack_url }}">Acknowledge</a> (stops the escalation)</p>{% endif %}
<p style="color: #666">rule {{ alert.rule_id }} &middot; alert {{ alert.alert_id }}</p>
</body></html>
"""
)

SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#ef6c00"}


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _env.from_string(source)


def _pick(custom: str | None, default: Template) -> Template:
    return _compiled(custom) if custom is not None else default


def clocks(timezone: str) -> dict[str, Callable[[datetime], str]]:
    """Time formatters in the recipient's zone, named: `when` (14:05 CET), `stamp`
    (2026-11-24 14:05:09 CET). Templates, the rule authors' too, get both."""
    zone = ZoneInfo(timezone)

    def when(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%H:%M %Z")

    def stamp(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    return {"when": when, "stamp": stamp}


def render(
    form: MessageForm | str, alert: Alert, ack_url: str | None = None, timezone: str = "UTC",
) -> Message:
    """The message in one channel's form (or, by name, the form of an unconfigured one): the
    rule's own templates where it has them, else ours. A rule template that fails at render
    time falls back to the default text, so a typo in a template never costs a notification.
    `ack_url` is a signed link that acknowledges the alert; times are shown in `timezone`
    (the recipient's)."""
    shape = CHANNEL_KINDS[form].form(None) if isinstance(form, str) else form
    try:
        return _render(shape, alert, alert.templates, ack_url, timezone)
    except TemplateError:
        which = "short" if shape.short else "email"
        log.exception("rule %s: its %s template failed; sending the default text", alert.rule_id, which)
        return _render(shape, alert, None, ack_url, timezone)


def _render(form: MessageForm, alert: Alert, templates: Templates | None,
            ack_url: str | None, timezone: str) -> Message:
    values = alert.evidence.values
    custom = templates or Templates()
    data = alert.model_dump(mode="json", exclude={"templates", "notify"})
    context: dict[str, Any] = {"alert": alert, "values": values, "show": show, "hidden": _HIDDEN_IN_SMS,
                               **clocks(timezone)}
    live_ack = ack_url if alert.state == "fired" else None
    if form.short:
        text = _pick(custom.sms, SMS_TEMPLATE).render(**context)
        if alert.reminder:
            text = f"REMINDER {alert.reminder}: {text}"
        if form.max_segments is not None:
            text = segments.fit(text, form.max_segments)
        return Message(subject="", text=text, data=data, ack_url=live_ack)
    subject = _pick(custom.email_subject, EMAIL_SUBJECT).render(**context)
    if alert.reminder:
        subject = f"Reminder {alert.reminder}: {subject}"
    body = _pick(custom.email_body, EMAIL_BODY).render(**context)
    if ack_url and alert.state == "fired":
        body += f"\nAcknowledge (stops the escalation): {ack_url}\n"
    snapshot = alert.evidence.snapshot
    colour = "#2e7d32" if alert.state == "resolved" else SEVERITY_COLOURS.get(alert.severity, "#1565c0")
    html = EMAIL_HTML.render(**context, snapshot=snapshot, colour=colour,
                             ack_url=ack_url if alert.state == "fired" else None,
                             body=body if custom.email_body is not None else None)
    return Message(subject=subject, text=body, html=html, thread_id=f"alert-{alert.alert_id}",
                   first_in_thread=alert.delivery_round == "fired", image=snapshot, data=data,
                   ack_url=live_ack)
