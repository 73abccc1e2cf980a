"""Default message texts per channel, rendered in Jinja2's sandbox.

SMS is short (one segment where possible: severity, title, where, key values);
email carries the full story. Templates are sandboxed because rule authors will be
supply their own (`templates:` in a rule), and a template must never reach Python internals.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from jinja2 import Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from notifier.channels import Message
from rules.events import Alert
from rules.model import Templates

log = logging.getLogger(__name__)

_env = SandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)

SMS_TEMPLATE = _env.from_string(
    "{{ 'RESOLVED' if alert.state == 'resolved' else alert.severity.upper() }}: "
    "{{ alert.title }} @ {{ alert.group_key }}"
    "{% for k, v in values.items() if k not in ('classes', 'unit', 'model') %} {{ k }}={{ v }}{% endfor %}"
    " {{ alert.time.strftime('%H:%MZ') }}"
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
Started:   {{ alert.started_at.isoformat() }}
{% if alert.resolved_at %}Resolved:  {{ alert.resolved_at.isoformat() }}
{% endif %}
Values:
{% for k, v in values.items() %}  {{ k }}: {{ v }}
{% endfor %}
Evidence events: {{ alert.evidence.event_ids | length }}
Alert id: {{ alert.alert_id }}
"""
)

SMS_MAX_CHARS = 160  # one GSM-7 segment


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _env.from_string(source)


def _pick(custom: str | None, default: Template) -> Template:
    return _compiled(custom) if custom is not None else default


def render(channel: str, alert: Alert) -> Message:
    """The message for one channel: the rule's own templates where it has them, else ours.
    A rule template that fails at render time falls back to the default text, so a typo
    in a template never costs a notification."""
    try:
        return _render(channel, alert, alert.templates)
    except TemplateError:
        log.exception("rule %s: its %s template failed; sending the default text", alert.rule_id, channel)
        return _render(channel, alert, None)


def _render(channel: str, alert: Alert, templates: Templates | None) -> Message:
    values = alert.evidence.values
    custom = templates or Templates()
    if channel == "sms":
        text = _pick(custom.sms, SMS_TEMPLATE).render(alert=alert, values=values)
        if alert.reminder:
            text = f"REMINDER {alert.reminder}: {text}"
        if len(text) > SMS_MAX_CHARS:
            text = text[: SMS_MAX_CHARS - 1] + "…"
        return Message(subject="", text=text)
    subject = _pick(custom.email_subject, EMAIL_SUBJECT).render(alert=alert, values=values)
    if alert.reminder:
        subject = f"Reminder {alert.reminder}: {subject}"
    body = _pick(custom.email_body, EMAIL_BODY).render(alert=alert, values=values)
    return Message(subject=subject, text=body)
