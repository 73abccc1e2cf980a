"""The console under hostile use, against the real TimescaleDB and broker: escaping, sign-in
throttling, sessions and tokens that end when they should, Twilio signatures over the full
URL, and 4xx (never 5xx) for parameters out of range."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from citywatch.console.app import create_app
from citywatch.console.logs import RedactSecrets
from citywatch.console.tokens import new_token, secret_hash
from citywatch.settings import Settings, load_settings
from citywatch.topics import Topics, ensure_topics
from notifier.acklinks import AckLinks
from rules.events import Alert
from storage.people import add_token, disable_user
from storage.writer import EventWriter
from tests.console_helpers import PASSWORD, make_user, sign_in

pytestmark = pytest.mark.integration
PUBLIC = "http://console.city.test"  # http: the test client keeps no Secure cookie
ACK_SECRET = uuid4().hex + uuid4().hex
TWILIO_TOKEN = uuid4().hex


@pytest.fixture
async def settings(tmp_path: Path, bootstrap: str, dsn: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    run = f"hard{uuid4().hex[:8]}"
    monkeypatch.setenv("CITYWATCH_CONSOLE__SESSION_SECRET", uuid4().hex)
    monkeypatch.setenv("CITYWATCH_CONSOLE__ACK_SECRET", ACK_SECRET)
    monkeypatch.setenv("CITYWATCH_CHANNELS__SMS__AUTH_TOKEN", TWILIO_TOKEN)
    (tmp_path / "citywatch.yaml").write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}}}
storage: {{dsn: "{dsn}"}}
channels:
  sms: {{account_sid: {"AC" + "5" * 32}, from_number: "+15005550006"}}
recipients:
  ana: {{email: ana@example.org}}
notify:
  schedules:
    ops: {{rotation: {{users: [ana], start: 2026-01-01, timezone: Europe/London}}}}
console: {{public_url: "{PUBLIC}"}}
""")
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    return load_settings(tmp_path / "citywatch.yaml")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


async def test_the_acknowledgement_page_escapes_who_acknowledged(
    client: TestClient, pg_pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    alert = Alert(source_id="cam-h", time=now, alert_id=uuid4(), rule_id="fire", title="Fire",
                  severity="critical", state="fired", group_key="cam-h", started_at=now)
    await EventWriter(pg_pool).write([alert])
    link = urlsplit(AckLinks(PUBLIC, ACK_SECRET).link(str(alert.alert_id), "<script>alert(1)</script>"))
    page = client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


async def test_wrong_passwords_are_throttled_per_user(client: TestClient, pg_pool: asyncpg.Pool) -> None:
    name = f"tia-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "viewer")
    token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"username": name, "password": "not the password", "csrf_token": token}
    for _ in range(5):
        assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    refused = client.post("/login", data={**form, "password": PASSWORD}, follow_redirects=False)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    other = f"uma-{uuid4().hex[:6]}"
    await make_user(pg_pool, other, "viewer")
    sign_in(client, other)  # another user from the same address is not locked out


async def test_a_password_reset_ends_sessions_and_enabling_again_revives_no_token(
    client: TestClient, pg_pool: asyncpg.Pool,
) -> None:
    name = f"ray-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "operator")
    sign_in(client, name)
    assert client.get("/api/alerts").status_code == 200
    await make_user(pg_pool, name, "operator")  # the password is set anew
    assert client.get("/api/alerts").status_code == 401
    token = new_token()
    await add_token(pg_pool, token.id, name, secret_hash(token.secret), "viewer", "script", None)
    bearer = {"Authorization": f"Bearer {token.text}"}
    assert client.get("/api/alerts", headers=bearer).status_code == 200
    await disable_user(pg_pool, name)
    await make_user(pg_pool, name, "operator")  # enabled again
    assert client.get("/api/alerts", headers=bearer).status_code == 401


async def test_twilio_signatures_cover_the_query_string(client: TestClient) -> None:
    form = {"MessageSid": "SM9", "MessageStatus": "delivered", "To": "+447700900111"}
    signer = RequestValidator(TWILIO_TOKEN)
    path = "/twilio/status?site=north"
    good = {"X-Twilio-Signature": signer.compute_signature(PUBLIC + path, form)}
    assert client.post(path, data=form, headers=good).status_code == 200
    without_query = {"X-Twilio-Signature": signer.compute_signature(PUBLIC + "/twilio/status", form)}
    assert client.post(path, data=form, headers=without_query).status_code == 403


async def test_out_of_range_parameters_are_4xx_never_5xx(client: TestClient, pg_pool: asyncpg.Pool) -> None:
    name = f"ola-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "admin")
    csrf = sign_in(client, name)
    changes = {"X-CSRF-Token": csrf}
    day = {"start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"}
    asks = [
        client.get("/api/oncall", params={"at": "0001-01-01T00:00:00+01:00"}),
        client.get("/api/oncall", params={"at": "9999-12-31T23:59:59-01:00"}),
        client.get("/api/alerts", params={"limit": 10**12}),
        client.get("/api/events/alerts", params={**day, "rule": "a\x00b"}),
        client.get("/api/events/alerts", params={"start": "99999-01-01T00:00Z", "end": "9999-12-31T00:00Z"}),
        client.get("/api/aggregates/alerts_per_rule", params={**day, "bucket": "99999999999999d"}),
        client.post("/api/rules/fire/silence", json={"duration": "99999999999d", "reason": "x"},
                    headers=changes),
        client.post("/api/rules/rollback", json={"name": "a.yaml", "version": 2**40}, headers=changes),
        client.get("/api/rules/files/a%00.yaml/versions"),
    ]
    statuses = [(str(r.request.url), r.status_code, r.text[:200]) for r in asks]
    assert [s for s in statuses if not 400 <= s[1] < 500] == []


def test_access_logs_keep_no_signatures() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/ack/x?by=ana&exp=1&sig=deadbeef&token=cwt_1_s", "1.1",
                                200), None)
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert "deadbeef" not in line and "cwt_1_s" not in line and "sig=[redacted]" in line and "by=ana" in line
