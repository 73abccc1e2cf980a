"""Default message texts per channel, rendered in Jinja2's sandbox.

SMS is short (one segment where possible: severity, title, where, key values);
email carries the full story. Templates are sandboxed because rule authors will be
able to supply their own (issue 5/7), and a template must never reach Python internals.
"""

from __future__ import annotations

from jinja2.sandbox import SandboxedEnvironment

from notifier.channels import Message
from rules.events import Alert

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


def render(channel: str, alert: Alert) -> Message:
    values = alert.evidence.values
    if channel == "sms":
        text = SMS_TEMPLATE.render(alert=alert, values=values)
        if len(text) > SMS_MAX_CHARS:
            text = text[: SMS_MAX_CHARS - 1] + "…"
        return Message(subject="", text=text)
    return Message(
        subject=EMAIL_SUBJECT.render(alert=alert),
        text=EMAIL_BODY.render(alert=alert, values=values),
    )
