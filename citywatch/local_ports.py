"""The embedded default's clients and servers agree on their ports, or say so.

The local broker and database listen on `infra.broker_port` and `infra.db_port`, the local
SMTP server and Twilio endpoint on `devservers.smtp_port` and `twilio_port`; the clients
find them through `broker.url`, `storage.dsn`, `channels.email` and the Twilio channels'
`api_base_url`. Moving one side alone used to send mail to a port nobody listens on, with
no error. Every client that points at this machine is checked against the server it is
meant for, and each disagreement is named with both keys.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from citywatch.settings import Settings
from notifier.email import KIND as EMAIL
from notifier.sms import KIND as SMS
from notifier.twilio_client import TwilioAccountSettings
from notifier.voice import KIND as VOICE

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _local(host: str | None, settings_host: str) -> bool:
    return host is not None and (host in LOCAL_HOSTS or host == settings_host)


def infra_mismatches(settings: Settings) -> list[str]:
    """The broker and database clients against the local services' ports."""
    problems = []
    infra = settings.infra
    for server in settings.broker.bootstrap_servers.split(","):
        host, _, port = server.rpartition(":")
        if _local(host, infra.host) and port.isdigit() and int(port) != infra.broker_port:
            problems.append(f"broker.url points at port {port}, but the local broker listens on "
                            f"infra.broker_port {infra.broker_port}: change both together")
    dsn = urlsplit(settings.storage.dsn)
    if _local(dsn.hostname, infra.host) and (dsn.port or 5432) != infra.db_port:
        problems.append(f"storage.dsn points at port {dsn.port or 5432}, but the local TimescaleDB "
                        f"listens on infra.db_port {infra.db_port}: change both together")
    return problems


def devserver_mismatches(settings: Settings) -> list[str]:
    """The email and Twilio channels against the local SMTP server and Twilio endpoint."""
    problems = []
    dev = settings.devservers
    email = settings.channels.of(EMAIL)
    if email is not None and _local(email.host, dev.host) and email.port != dev.smtp_port:
        problems.append(f"channels.email.port is {email.port}, but the local SMTP server listens on "
                        f"devservers.smtp_port {dev.smtp_port}: change both together")
    twilio: list[tuple[str, TwilioAccountSettings | None]] = [
        ("sms", settings.channels.of(SMS)), ("voice", settings.channels.of(VOICE))]
    for name, channel in twilio:
        base = urlsplit(channel.api_base_url) if channel is not None and channel.api_base_url else None
        if base is not None and _local(base.hostname, dev.host) and base.port != dev.twilio_port:
            problems.append(f"channels.{name}.api_base_url points at port {base.port}, but the local "
                            f"Twilio endpoint listens on devservers.twilio_port {dev.twilio_port}: "
                            "change both together")
    return problems
