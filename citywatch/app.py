"""The Faust app: topics, the state tables, and the agents (citywatch.agents) wiring the domains.

    frames ──detect──► detections ─┐
    readings, telemetry ───────────┼─evaluate──► alerts ──notify──► notifications
    clock (ticks) ─────────────────┘    │  ▲
                                        ▼  │ (rules joining sources, keyed by rule)
                                  correlate ─► correlate agent
    rules (compacted) ──► every worker's rule book; archive-rules ──► TimescaleDB
    readings, detections, alerts, notifications, telemetry ──store──► TimescaleDB

Every topic is raw bytes; agents decode themselves so a malformed message becomes a
dead letter with its reason instead of a crashed agent. An agent never raises out of
its loop: a crashed Faust agent leaves its message unacknowledged and blocks shutdown.
Delivery is at-least-once; storage and notifications are idempotent on event ids.
"""

from __future__ import annotations

from typing import Any

import faust

from citywatch import faust_fixes
from citywatch.agents import deadletters, detect, evaluate, housekeeping, notify, store
from citywatch.agents.context import AgentContext, FaustPublisher
from citywatch.runtime import Runtime
from citywatch.settings import Settings
from citywatch.table_store import TableSlot, TrackedTable
from citywatch.topics import Topics

__all__ = ["FaustPublisher", "build_app"]

ROCKSDB_OPTIONS = {
    # Faust's defaults are sized for one big table (64 MiB write buffers, a 2 GiB block cache,
    # nearly every file descriptor) and apply to each partition's file; CityWatch has five
    # tables of small JSON values on every partition.
    "write_buffer_size": 4 << 20, "max_write_buffer_number": 2, "target_file_size_base": 8 << 20,
    "block_cache_size": 8 << 20, "block_cache_compressed_size": 0, "max_open_files": 64,
}


def build_app(settings: Settings, runtime: Runtime | None = None,
              tables: TableSlot | None = None) -> faust.App:
    """`tables`: where RocksDB keeps the tables (citywatch.table_store); None: in memory."""
    broker = settings.broker
    topics = Topics(broker.topic_prefix)
    faust_fixes.apply(compacted_topics={topics.name("rules")})
    runtime = runtime or Runtime(settings)
    datadir = settings.infra.state_dir / "worker"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        broker.app_id,
        broker=broker.url,
        store="rocksdb://" if tables else "memory://",
        tabledir=str(tables.tables) if tables else None,
        Table=TrackedTable,
        topic_partitions=broker.partitions,
        topic_replication_factor=broker.replication_factor,
        table_standby_replicas=broker.standby_replicas,
        broker_session_timeout=broker.session_timeout_s,
        broker_heartbeat_interval=broker.heartbeat_interval_s,
        broker_rebalance_timeout=broker.rebalance_timeout_s,
        producer_max_request_size=broker.max_message_bytes,
        consumer_max_fetch_size=broker.max_message_bytes,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        datadir=str(datadir),
    )
    ctx = AgentContext(app, settings, topics, runtime, FaustPublisher(app, topics))

    def table(name: str) -> Any:
        return app.Table(name, default=None, partitions=broker.partitions, options=ROCKSDB_OPTIONS)

    detect.register(ctx)
    evaluate.register(ctx, table("rule-state"), table("correlation-state"))
    notify.register(ctx, table("escalations"), table("delivery-claims"), table("delivery-outbox"))
    store.register(ctx)
    deadletters.register(ctx)
    housekeeping.register(ctx)

    async def close_runtime(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await runtime.close()

    app.on_before_shutdown.connect(close_runtime)
    return app
