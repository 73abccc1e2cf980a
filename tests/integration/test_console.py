"""The console against the real TimescaleDB and broker: sign-in, roles on every route, CSRF,
the audit log, and the live feed over Server-Sent Events."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from fastapi.testclient import TestClient

from citywatch.console.app import create_app
from citywatch.settings import Settings, load_settings
from citywatch.topics import Topics, ensure_topics
from detectors.events import Detection
from ingest.events import SourceHealth
from rules.events import Alert
from storage.snapshots import PgSnapshots
from storage.writer import EventWriter
from tests.console_helpers import PASSWORD, make_user, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture
async def console_settings(
    tmp_path: Path, bootstrap: str, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    run = f"con{uuid4().hex[:8]}"
    monkeypatch.setenv("CITYWATCH_CONSOLE__SESSION_SECRET", uuid4().hex)
    (tmp_path / "citywatch.yaml").write_text(
        f'broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}}}\nstorage: {{dsn: "{dsn}"}}\n')
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    return load_settings(tmp_path / "citywatch.yaml")


@pytest.fixture
def client(console_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(console_settings)) as test_client:
        yield test_client


async def stored_alert(pool: asyncpg.Pool, title: str) -> Alert:
    now = datetime.now(UTC)
    alert = Alert(source_id="cam-console", time=now, alert_id=uuid4(), rule_id="crowd", title=title,
                  severity="critical", state="fired", group_key="cam-console", started_at=now)
    await EventWriter(pool).write([alert])
    return alert


async def test_nothing_works_without_signing_in(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    group = client.get("/healthz/group")  # no worker yet, but not for long enough to be a stall
    assert group.status_code == 200 and group.json()["status"] == "ok"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    day = {"start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"}
    for path, params in [("/api/alerts", {}), ("/api/events/alerts", day), ("/api/oncall", {}),
                         ("/api/aggregates/alerts_per_rule", day), ("/events/alerts", {})]:
        assert client.get(path, params=params).status_code == 401, path
    assert client.post(f"/api/alerts/{uuid4()}/ack", json={}).status_code == 401
    assert client.post("/api/rules/crowd/silence", json={"duration": "1h", "reason": "x"}).status_code == 401


async def test_roles_decide_what_each_user_may_do(client: TestClient, pg_pool: asyncpg.Pool) -> None:
    suffix = uuid4().hex[:6]
    await make_user(pg_pool, f"vic-{suffix}", "viewer")
    await make_user(pg_pool, f"oscar-{suffix}", "operator")
    alert = await stored_alert(pg_pool, f"Console test {suffix}")

    csrf = sign_in(client, f"vic-{suffix}")
    page = client.get("/")
    assert alert.title in page.text and "Acknowledge" not in page.text  # a viewer sees, cannot act
    assert client.get("/api/alerts", params={"limit": 5}).json()[0]["title"] == alert.title
    ack_path = f"/api/alerts/{alert.alert_id}/ack"
    assert client.post(ack_path, json={}, headers={"X-CSRF-Token": csrf}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf})
    assert client.get("/api/alerts").status_code == 401  # signed out

    csrf = sign_in(client, f"oscar-{suffix}")
    assert "Acknowledge" in client.get("/").text
    assert client.post(f"/api/alerts/{alert.alert_id}/ack", json={}).status_code == 403  # no CSRF token
    assert client.post(f"/api/alerts/{alert.alert_id}/ack", json={},
                       headers={"X-CSRF-Token": "forged"}).status_code == 403
    taken = client.post(f"/api/alerts/{alert.alert_id}/ack", json={"note": "on my way"},
                        headers={"X-CSRF-Token": csrf})
    assert taken.status_code == 202 and taken.json()["by"] == f"oscar-{suffix}"
    noted = client.post(f"/api/alerts/{alert.alert_id}/comment", json={"text": "crew sent"},
                        headers={"X-CSRF-Token": csrf})
    assert noted.status_code == 201 and noted.json()["text"] == "crew sent"
    muted = client.post("/api/rules/crowd/silence", json={"duration": "2h", "reason": "roadworks"},
                        headers={"X-CSRF-Token": csrf})
    assert muted.status_code == 201 and muted.json()["created_by"] == f"oscar-{suffix}"
    actions = await pg_pool.fetch("SELECT actor, action FROM audit_log WHERE actor = ANY($1::text[])",
                                  [f"vic-{suffix}", f"oscar-{suffix}"])
    assert {(r["actor"], r["action"]) for r in actions} >= {
        (f"vic-{suffix}", "login"), (f"oscar-{suffix}", "acknowledge"), (f"oscar-{suffix}", "silence"),
        (f"oscar-{suffix}", "comment")}


async def test_wrong_passwords_and_forged_logins_are_refused(
    client: TestClient, pg_pool: asyncpg.Pool
) -> None:
    name = f"ana-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "admin")
    with pytest.raises(AssertionError):
        sign_in(client, name, password=PASSWORD + "!")
    assert client.post("/login", data={"username": name, "password": PASSWORD}).status_code == 403  # no CSRF
    failed = await pg_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = $1 AND action = 'login failed'", name)
    assert failed == 1
    stored = await pg_pool.fetchval("SELECT password_hash FROM console_users WHERE username = $1", name)
    assert stored.startswith("$argon2") and PASSWORD not in stored


async def test_the_live_feed_streams_new_alerts_and_acknowledgements(
    client: TestClient, pg_pool: asyncpg.Pool, console_settings: Settings, bootstrap: str,
) -> None:
    from citywatch.publisher import KafkaPublisher

    name = f"olga-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "operator")
    sign_in(client, name)
    feed = client.app.state.feed  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while not feed.ready.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110 - another thread's loop
        await asyncio.sleep(0.1)
    now = datetime.now(UTC)
    alert = Alert(source_id="cam-live", time=now, alert_id=uuid4(), rule_id="crowd", title="Live one",
                  severity="warning", state="fired", group_key="cam-live", started_at=now)
    publisher = KafkaPublisher(bootstrap, Topics(console_settings.broker.topic_prefix), 1 << 20)
    with client.stream("GET", "/events/alerts") as stream:
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        await publisher.start()
        await publisher.send("alerts", alert.kafka_key.encode(), alert.to_json())
        await publisher.stop()
        events = []
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                break
    assert events[0]["type"] == "alert" and events[0]["alert_id"] == str(alert.alert_id)


async def test_every_page_renders_for_a_signed_in_user(
    client: TestClient, pg_pool: asyncpg.Pool, bus_jpg: Path, console_settings: Settings,
) -> None:
    import shutil

    name = f"adam-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "admin")
    folder = console_settings.infra.state_dir / "snapshots" / "cam-console"
    folder.mkdir(parents=True, exist_ok=True)
    snapshot = folder / "evidence.jpg"
    shutil.copy(bus_jpg, snapshot)
    now = datetime.now(UTC)
    alert = Alert(source_id="cam-console", time=now, alert_id=uuid4(), rule_id="crowd", title="With evidence",
                  severity="warning", state="fired", group_key="cam-console", started_at=now,
                  evidence={"values": {"count": 4}, "snapshot": str(snapshot)})
    await EventWriter(pg_pool).write([alert])
    for path in ("/rules", "/history", "/sources", "/oncall", f"/alerts/{alert.alert_id}"):
        assert client.get(path, follow_redirects=False).headers.get("location") == "/login", path
    sign_in(client, name)
    for path in ("/", "/rules", "/history", "/sources", "/oncall"):
        assert client.get(path).status_code == 200, path
    detail = client.get(f"/alerts/{alert.alert_id}")
    assert detail.status_code == 200 and "count" in detail.text and "/snapshot?path=" in detail.text
    image = client.get("/snapshot", params={"path": str(snapshot)})
    assert image.status_code == 200 and image.content == bus_jpg.read_bytes()  # noqa: ASYNC240
    assert client.get("/snapshot", params={"path": "/etc/passwd"}).status_code == 404
    seen = Detection(source_id="cam-console", time=now, frame_event_id=uuid4(), model="yolo",
                     model_version="8n", frame_width=810, frame_height=1080, inference_ms=1.0)
    kept = await PgSnapshots.on(pg_pool).keep(seen, image.content)  # as a worker does
    from_database = client.get("/snapshot", params={"path": kept})
    assert from_database.status_code == 200 and from_database.content == image.content
    assert from_database.headers["content-type"] == "image/jpeg"
    assert client.get("/snapshot", params={"path": f"snapshot:{uuid4()}"}).status_code == 404


async def test_the_sources_page_says_how_each_camera_decodes(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, vtest_avi: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A camera on a static scene decodes keyframes only; the operator sees it and what it saved."""
    run = f"src{uuid4().hex[:8]}"
    monkeypatch.setenv("CITYWATCH_CONSOLE__SESSION_SECRET", uuid4().hex)
    (tmp_path / "citywatch.yaml").write_text(
        f'broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}}}\nstorage: {{dsn: "{dsn}"}}\n'
        f'sources: {{cameras: [{{id: still-{run}, url: "{vtest_avi}"}},'
        f' {{id: busy-{run}, url: "{vtest_avi}"}}]}}\n')
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    now = datetime.now(UTC)
    await EventWriter(pg_pool).write([
        SourceHealth(source_id=f"still-{run}", time=now, connected=True, keyframes_only=True,
                     packets_skipped=570),
        SourceHealth(source_id=f"busy-{run}", time=now, connected=True, measured_fps=2.0)])
    name = f"sol-{run}"
    await make_user(pg_pool, name, "viewer")
    with TestClient(create_app(load_settings(tmp_path / "citywatch.yaml"))) as client:
        sign_in(client, name)
        page = client.get("/sources")
    assert page.status_code == 200
    still, busy = (page.text.split(f"<tr><td>{camera}-{run}")[1].split("</tr>")[0]
                   for camera in ("still", "busy"))
    assert "<td>yes</td>" in still and "keyframes only (static scene), 570 packets not decoded" in still
    assert "<td>yes</td>" in busy and "every frame" in busy and "<td>2.0</td>" in busy


async def test_rule_editing_needs_the_rule_editor_role_and_valid_yaml(
    client: TestClient, pg_pool: asyncpg.Pool,
) -> None:
    suffix = uuid4().hex[:6]
    await make_user(pg_pool, f"olaf-{suffix}", "operator")
    await make_user(pg_pool, f"rita-{suffix}", "rule_editor")
    good = f"id: crowd-{suffix}\ntitle: Crowd\ncondition: {{type: detection, classes: [person]}}\n"
    bad = (f"id: crowd-{suffix}\ntitle: Crowd\ncondition:\n  type: detection\n  classes: [person]\n"
           "  min_cuont: 3\n")
    csrf = sign_in(client, f"olaf-{suffix}")
    checked = client.post("/api/rules/check", json={"name": "c.yaml", "content": bad},
                          headers={"X-CSRF-Token": csrf}).json()
    assert [(e["line"], "min_cuont" in e["message"]) for e in checked["errors"]] == [(6, True)]
    refused = client.post("/api/rules/publish", json={"name": f"c-{suffix}.yaml", "content": good},
                          headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403  # an operator cannot change rules
    client.post("/logout")
    csrf = sign_in(client, f"rita-{suffix}")
    invalid = client.post("/api/rules/publish", json={"name": f"c-{suffix}.yaml", "content": bad},
                          headers={"X-CSRF-Token": csrf})
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["line"] == 6
    published = client.post("/api/rules/publish", json={"name": f"c-{suffix}.yaml", "content": good,
                                                        "comment": "first"}, headers={"X-CSRF-Token": csrf})
    assert published.status_code == 201 and published.json()["rules"] == [f"crowd-{suffix}"]
    first = published.json()["sha256"]
    listed = {f["name"]: f for f in client.get("/api/rules/files").json()}
    assert listed[f"c-{suffix}.yaml"]["sha256"] == first  # recorded at once, not when a worker gets to it
    edited = good.replace("title: Crowd", "title: Crowd at the gate")
    again = client.post("/api/rules/publish", json={"name": f"c-{suffix}.yaml", "content": edited},
                        headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]["message"]  # not new
    second = client.post("/api/rules/publish", json={"name": f"c-{suffix}.yaml", "content": edited,
                                                     "replaces": first}, headers={"X-CSRF-Token": csrf})
    assert second.status_code == 201
    stale = client.post("/api/rules/publish", json={"name": f"c-{suffix}.yaml", "content": good + "# mine\n",
                                                    "replaces": first}, headers={"X-CSRF-Token": csrf})
    assert stale.status_code == 409 and stale.json()["detail"]["live_sha256"] == second.json()["sha256"]
    versions = await pg_pool.fetch(
        "SELECT version, author FROM rule_versions WHERE name = $1 ORDER BY version", f"c-{suffix}.yaml")
    assert [(v["version"], v["author"]) for v in versions] == [(1, f"rita-{suffix}"), (2, f"rita-{suffix}")]
    trial = client.post("/api/rules/test", json={"name": f"c-{suffix}.yaml", "content": good, "hours": 1},
                        headers={"X-CSRF-Token": csrf})
    assert trial.status_code == 200 and isinstance(trial.json()["alerts"], list)
    audit = await pg_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = $1 AND action = 'publish rules'", f"rita-{suffix}")
    assert audit == 2  # the refused ones are not in it


def cli_users(settings_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "citywatch", "--config", str(settings_file), "users", *args],
                          capture_output=True, text=True, timeout=60, check=False)


async def test_api_tokens_act_as_their_user_with_at_most_their_role(
    client: TestClient, pg_pool: asyncpg.Pool, console_settings: Settings, tmp_path: Path,
) -> None:
    suffix = uuid4().hex[:6]
    await make_user(pg_pool, f"nora-{suffix}", "operator")
    alert = await stored_alert(pg_pool, f"Token test {suffix}")
    settings_file = tmp_path / "citywatch.yaml"
    made = cli_users(settings_file, "token", "add", f"nora-{suffix}", "--label", "notebook")
    assert made.returncode == 0, made.stderr
    reader = made.stdout.strip()
    assert reader.startswith("cwt_") and reader not in made.stderr
    operator = cli_users(settings_file, "token", "add", f"nora-{suffix}", "--role", "admin").stdout.strip()
    assert cli_users(settings_file, "token", "add", f"nobody-{suffix}").returncode != 0

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    client.cookies.clear()  # no session: the token alone
    now = datetime.now(UTC)
    day = {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat(), "source": "cam-console"}
    found = client.get("/api/events/alerts", params=day, headers=bearer(reader))
    assert found.status_code == 200 and alert.title in found.text
    ack = f"/api/alerts/{alert.alert_id}/ack"
    assert client.post(ack, json={}, headers=bearer(reader)).status_code == 403  # a viewer token by default
    taken = client.post(ack, json={"note": "from a script"}, headers=bearer(operator))  # no CSRF: no cookie
    assert taken.status_code == 202 and taken.json()["by"] == f"nora-{suffix}"
    draft = {"name": f"t-{suffix}.yaml", "content": "id: t\ntitle: T\ncondition: {type: detection}\n"}
    assert client.post("/api/rules/publish", json=draft, headers=bearer(operator)).status_code == 403  # asked
    # for admin, but a token never has more than its user's own role (operator)
    for forged in (reader[:-2] + "xx", "cwt_000000000000_nothing", "Bearer", reader.replace("cwt_", "cwx_")):
        assert client.get("/api/events/alerts", params=day, headers=bearer(forged)).status_code == 401

    listed = cli_users(settings_file, "token", "list").stdout
    reader_id = reader.split("_")[1]
    line = next(row for row in listed.splitlines() if row.startswith(reader_id))
    assert f"nora-{suffix}\tviewer\tnotebook" in line and line.endswith("active") and "never" not in line
    assert reader.split("_", 2)[2] not in listed  # the secret is never shown again
    assert cli_users(settings_file, "token", "revoke", reader_id).returncode == 0
    assert client.get("/api/events/alerts", params=day, headers=bearer(reader)).status_code == 401
    assert cli_users(settings_file, "disable", f"nora-{suffix}").returncode == 0
    assert client.post(ack, json={}, headers=bearer(operator)).status_code == 401  # its user is disabled
    stored = await pg_pool.fetchval("SELECT secret_hash FROM api_tokens WHERE id = $1", reader_id)
    assert reader.split("_", 2)[2] not in stored


async def test_a_signed_in_user_who_is_demoted_or_disabled_loses_the_rights_at_once(
    client: TestClient, pg_pool: asyncpg.Pool,
) -> None:
    suffix = uuid4().hex[:6]
    await make_user(pg_pool, f"dora-{suffix}", "operator")
    alert = await stored_alert(pg_pool, f"Demotion test {suffix}")
    csrf = sign_in(client, f"dora-{suffix}")
    assert "Acknowledge" in client.get("/").text
    # demoted while signed in (a role change alone; a new password would end the session)
    await pg_pool.execute("UPDATE console_users SET role = 'viewer' WHERE username = $1", f"dora-{suffix}")
    ack = f"/api/alerts/{alert.alert_id}/ack"
    assert client.post(ack, json={}, headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.get("/api/alerts").status_code == 200
    assert "Acknowledge" not in client.get("/").text  # the pages too
    await pg_pool.execute("UPDATE console_users SET disabled = true WHERE username = $1", f"dora-{suffix}")
    assert client.get("/api/alerts").status_code == 401
    assert client.get("/history", follow_redirects=False).headers["location"] == "/login"


async def test_signing_out_ends_the_session_even_for_a_copied_cookie(
    client: TestClient, pg_pool: asyncpg.Pool,
) -> None:
    name = f"sid-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "viewer")
    sign_in(client, name)
    copied = client.cookies.get("citywatch")
    assert copied is not None
    payload = json.loads(base64.urlsafe_b64decode(copied.split(".")[0] + "=="))
    assert set(payload) == {"sid", "csrf"}  # a session id, not who the user is or their role
    assert client.get("/api/alerts").status_code == 200
    client.post("/logout")
    client.cookies.set("citywatch", copied)  # replayed, as a thief with a copy would
    assert client.get("/api/alerts").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    ended = await pg_pool.fetchval("SELECT count(*) FROM console_sessions WHERE username = $1"
                                   " AND ended_at IS NOT NULL", name)
    assert ended == 1


async def test_on_call_from_a_calendar_file_in_the_page_and_the_api(
    console_settings: Settings, pg_pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    from tests.unit.test_oncall_calendar import ICS

    (tmp_path / "oncall.ics").write_text(ICS)
    config = tmp_path / "citywatch.yaml"
    config.write_text(config.read_text() + """
recipients: {ana: {email: ana@city.example}, bo: {email: bo@city.example}, cy: {email: cy@city.example}}
notify: {schedules: {ops: {calendar: {path: oncall.ics}}}}
""")
    name = f"oona-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "viewer")
    with TestClient(create_app(load_settings(config))) as client:
        sign_in(client, name)
        assert client.get("/api/oncall", params={"at": "2026-04-07T12:00:00Z"}).json() == {"ops": "cy"}
        page = client.get("/oncall")
        assert page.status_code == 200 and "<td>ops</td>" in page.text and " UTC</span>" in page.text


async def test_the_demos_outbox_page_shows_the_local_mailbox_and_sms_log(
    client: TestClient, pg_pool: asyncpg.Pool, console_settings: Settings, tmp_path: Path,
) -> None:
    from citywatch.devservers.smtp import MailStore
    from citywatch.devservers.twilio import SmsStore

    assert client.get("/dev/outbox", follow_redirects=False).status_code == 404  # off unless dev mode
    dev = console_settings.model_copy(update={
        "console": console_settings.console.model_copy(update={"dev_pages": True}),
        "devservers": console_settings.devservers.model_copy(update={
            "mail_dir": tmp_path / "mail", "sms_file": tmp_path / "sms.jsonl"})})
    saved = MailStore(tmp_path / "mail").save(
        "citywatch@localhost", ["ops@example.org"],
        b"From: citywatch@localhost\r\nTo: ops@example.org\r\nSubject: Crowd forming\r\n\r\n"
        b"Three people.\r\n")
    SmsStore(tmp_path / "sms.jsonl").save({"to": "+447700900123", "body": "CRITICAL smoke at cam-1",
                                           "date_created": "Wed, 02 Dec 2026 03:00:00 +0000"})
    name = f"otto-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "viewer")
    with TestClient(create_app(dev)) as dev_client:
        assert dev_client.get("/dev/outbox", follow_redirects=False).headers["location"] == "/login"
        sign_in(dev_client, name)
        page = dev_client.get("/dev/outbox")
        assert page.status_code == 200 and "Crowd forming" in page.text
        assert "CRITICAL smoke at cam-1" in page.text
        assert 'href="/dev/outbox"' in page.text  # in the navigation
        mail = dev_client.get(f"/dev/outbox/mail/{saved.name}")
        assert mail.status_code == 200 and "Three people." in mail.text
        assert dev_client.get("/dev/outbox/mail/..%2F..%2Fetc%2Fpasswd").status_code == 404
