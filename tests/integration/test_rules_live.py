"""Rules in a running worker, on the real broker and database: absence by the lag-aware
clock, `for` in the sensor's event time, a worker killed with SIGKILL in the middle and restarted (no refire,
no forgotten timer, one email), rules changed on the `rules` topic with the CLI (a valid
version applies, a broken one is refused and the previous keeps running), silences, and
every version archived with its diff.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.publisher import KafkaPublisher
from citywatch.rulebook import publish_rules_message
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading
from rules.events import ResolveRequest
from rules.library import RuleFileVersion
from tests.worker_process import Worker, cli, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DEADLINE_S = 60.0

HOT = """
id: pm-high-{run}
title: PM2.5 high
sources: {{ids: [aq-{run}]}}
condition: {{type: threshold, field: pm25, above: 50, for: 4s}}
notify: [{{recipient: ops, channels: [email]}}]
"""
GHOST = """
id: ghost-{run}
title: Sensor never reported
sources: {{ids: [ghost-{run}]}}
condition: {{type: absence, within: 3s}}
"""
PAIR = """
id: pair-{run}
title: PM2.5 and NO2 high side by side
condition:
  type: all
  within: 5m
  near_m: 500
  conditions:
    - {{type: threshold, field: pm25, above: 50, sources: {{ids: [east-{run}]}}}}
    - {{type: threshold, field: no2, above: 100, sources: {{ids: [west-{run}]}}}}
"""
NO2 = """
id: no2-{run}
title: NO2 {label}
sources: {{kinds: [sensor]}}
condition: {{type: threshold, field: no2, above: 5}}
notify: [{{recipient: ops, channels: [email]}}]
"""


def config_text(tmp: Path, run: str, bootstrap: str, dsn: str, smtp_port: int) -> str:
    return f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 2}}
storage: {{dsn: "{dsn}", batch_window_s: 0.3}}
infra: {{state_dir: "{tmp / 'state'}"}}
rules: {{paths: ["{tmp / 'rules'}"], reload_every_s: 1, tick_every_s: 0.5}}
sources:
  sensors:
    - {{id: east-{run}, device_id: dev-east, position: {{lat: 51.5007, lon: -0.1246}}}}
    - {{id: west-{run}, device_id: dev-west, position: {{lat: 51.5010, lon: -0.1290}}}}
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, from_addr: citywatch@localhost}}
recipients:
  ops: {{email: ops@example.org}}
worker: {{loglevel: info}}
"""


@pytest.fixture
async def publisher(bootstrap: str) -> AsyncIterator[Callable[[str], KafkaPublisher]]:
    made: list[KafkaPublisher] = []

    def make(run: str) -> KafkaPublisher:
        made.append(KafkaPublisher(bootstrap, Topics(run), 1 << 20))
        return made[-1]

    yield make
    for one in made:
        await one.stop()


async def test_rules_live_in_a_worker(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, smtp: LocalSmtpServer,
    publisher: Callable[[str], KafkaPublisher],
) -> None:
    run = f"rl{uuid4().hex[:8]}"
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "hot.yaml").write_text(HOT.format(run=run))
    (rules_dir / "ghost.yaml").write_text(GHOST.format(run=run))
    (rules_dir / "pair.yaml").write_text(PAIR.format(run=run))
    config = tmp_path / "citywatch.yaml"
    config.write_text(config_text(tmp_path, run, bootstrap, dsn, int(smtp.address.rsplit(":", 1)[1])))
    await ensure_topics(bootstrap, Topics(run), partitions=2)
    send = publisher(run)
    await send.start()
    worker = Worker(config, tmp_path / "worker.log")
    worker.start()

    async def alerts(rule: str, state: str = "fired") -> list[asyncpg.Record]:
        return list(await pg_pool.fetch(
            "SELECT * FROM alerts WHERE rule_id = $1 AND state = $2 ORDER BY time", rule, state))

    async def reading(source: str, **values: float) -> Reading:
        event = Reading(source_id=source, time=datetime.now(UTC), values=values,
                        units=dict.fromkeys(values, "µg/m³"))
        await send.send("readings", source.encode(), event.to_json())
        return event

    try:
        # time alone: a sensor that never reported is noticed by the clock ticks
        [ghost] = await until("the absence alert", lambda: alerts(f"ghost-{run}"), worker)
        assert ghost["source_id"] == f"ghost-{run}"

        # a `for: 4s` timer survives SIGKILL: the alert fires once, started at the first
        # reading, when the sensor's own later readings carry its time past 4 s
        first = await reading(f"aq-{run}", pm25=80)
        await asyncio.sleep(1.5)
        worker.kill()
        worker.start()

        async def fired_while_reporting() -> list[asyncpg.Record]:
            await reading(f"aq-{run}", pm25=85)  # the sensor keeps reporting, once a probe
            return await alerts(f"pm-high-{run}")

        [fired] = await until("pm-high after a restart", fired_while_reporting, worker)
        assert fired["started_at"] == first.time
        assert fired["time"] == first.time + timedelta(seconds=4)  # at its due event time
        await until("the email", lambda: asyncio.sleep(0, smtp.store.messages()), worker)
        worker.kill()  # and once more, after firing: nothing fires or sends twice
        worker.start()
        await reading(f"aq-{run}", pm25=90)
        await until("the worker to take the next reading", lambda: pg_pool.fetchval(
            "SELECT count(*) >= 2 FROM readings WHERE source_id = $1", f"aq-{run}"), worker)
        await asyncio.sleep(3)
        fired_ids = {r["event_id"] for r in await alerts(f"pm-high-{run}")}
        assert len(fired_ids) == 1
        assert len(smtp.store.messages()) == 1

        # two sensors 300 m apart: the rule joining them runs in the correlate agent
        await reading(f"east-{run}", pm25=70)
        await reading(f"west-{run}", no2=150)
        [pair] = await until("the cross-source alert", lambda: alerts(f"pair-{run}"), worker)
        assert pair["group_key"] == f"east-{run}"
        closing = ResolveRequest(source_id=f"east-{run}", time=datetime.now(UTC), alert_id=pair["alert_id"],
                                 rule_id=f"pair-{run}", group_key=f"east-{run}", by="ana", reason="checked")
        await send.send("telemetry", closing.source_id.encode(), closing.to_json())  # as the console does
        [closed] = await until("the cross-source alert resolved by hand",
                               lambda: alerts(f"pair-{run}", "resolved"), worker)
        assert closed["alert_id"] == pair["alert_id"]
        assert json.loads(closed["evidence"])["values"]["resolved_by"] == "ana"

        # a new rule file, published with the CLI, is live without a restart
        new_rule = tmp_path / f"no2-{run}.yaml"
        new_rule.write_text(NO2.format(run=run, label="high"))
        result = cli(config, "publish", str(new_rule), "--author", "ana", "--comment", "first cut")
        assert result.returncode == 0, result.stderr

        async def no2_fires_for(source: str) -> list[asyncpg.Record]:
            await reading(source, no2=9)
            await asyncio.sleep(1)
            return [r for r in await alerts(f"no2-{run}") if r["source_id"] == source]

        await until("the published rule to fire", lambda: no2_fires_for(f"s1-{run}"), worker)

        # a broken version is refused by the CLI, and by the workers if it gets through anyway
        broken = NO2.format(run=run, label="broken").replace("above: 5", "above: lots")
        new_rule.write_text(broken)
        refused = cli(config, "publish", str(new_rule))
        assert refused.returncode == 1 and "condition.above" in refused.stderr
        await publish_rules_message(send, RuleFileVersion(
            name=new_rule.name, content=broken, author="mallory", published_at=datetime.now(UTC)))
        [still] = await until("the previous version to keep running",
                              lambda: no2_fires_for(f"s2-{run}"), worker)
        assert still["title"] == "NO2 high"

        # a silence mutes notifications, not alerts
        silence = cli(config, "silence", f"no2-{run}", "--for", "1h", "--reason", "sensor maintenance")
        assert silence.returncode == 0, silence.stderr
        await until("the worker to apply the silence",
                    lambda: asyncio.sleep(0, "silences changed" in worker.log.read_text()), worker)
        [muted] = await until("a muted alert", lambda: no2_fires_for(f"s3-{run}"), worker)
        assert "sensor maintenance" in muted["muted"]
        statuses = await until("the muted notification", lambda: pg_pool.fetch(
            "SELECT status FROM notifications WHERE alert_id = $1", muted["alert_id"]), worker)
        assert [s["status"] for s in statuses] == ["muted"]

        # every version is archived: who, when, what changed, and what was refused
        versions = await until("the archived versions", lambda: pg_pool.fetch(
            "SELECT version, author, accepted, comment, diff, errors FROM rule_versions WHERE name = $1"
            " ORDER BY version", new_rule.name), worker)
        assert [(v["author"], v["accepted"]) for v in versions] == [("ana", True), ("mallory", False)]
        assert versions[0]["comment"] == "first cut" and "+title: NO2 high" in versions[0]["diff"]
        assert "-title: NO2 high" in versions[1]["diff"] and "condition.above" in versions[1]["errors"]
        history = cli(config, "history", new_rule.name)
        assert history.returncode == 0 and "REFUSED" in history.stdout and "by ana" in history.stdout
    finally:
        worker.stop()
