"""The source registry is the one list: the settings' lists, the catalog, the kinds rules
select by and the start of every source follow the types the source modules declare. A
new source type, declared here as a plugin would be, runs without touching anything else."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import Field

from citywatch.catalog import source_catalog
from citywatch.codecs import decode_event
from citywatch.settings import load_settings
from citywatch.sources import SourceCounters, run_sources, runnable_sources
from ingest import source_registry
from ingest.events import Reading
from ingest.settings import SourcesSettings
from ingest.source_registry import SOURCE_TYPES
from ingest.source_types import SourceContext, SourceEntry, SourceType
from rules.loader import parse_rules
from rules.yaml_source import YamlFileError
from tests.unit.test_broken_source import Recorder


def test_every_source_list_in_the_settings_is_a_registered_type() -> None:
    lists = {name for name, field in SourcesSettings.model_fields.items()
             if getattr(field.annotation, "__origin__", None) is list}
    assert lists == set(SOURCE_TYPES)
    for key, source_type in SOURCE_TYPES.items():
        assert SourcesSettings.model_fields[key].annotation == list[source_type.entry]  # type: ignore[name-defined]
        assert issubclass(source_type.entry, SourceEntry) and source_type.kinds


def test_the_catalog_lists_every_source_of_every_type_with_its_kind(tmp_path: Path) -> None:
    config = tmp_path / "citywatch.yaml"
    config.write_text("""
sources:
  cameras:
    - {id: cam-1, url: a.mp4, tags: [street], position: {lat: 48.1, lon: 2.0}}
    - {id: drone-1, url: b.mp4, kind: drone}
  air_quality:
    - {id: aq-file, path: a.csv, columns: {no2: {field: no2, unit: ug/m3}}}
  sensors:
    - {id: aq-push, device_id: esp8266-1, tags: [park]}
""")
    catalog = source_catalog(load_settings(config, environ={}))
    assert {source: info.kind for source, info in catalog.items()} == {
        "cam-1": "camera", "drone-1": "drone", "aq-file": "sensor", "aq-push": "sensor"}
    assert catalog["cam-1"].position == (48.1, 2.0) and catalog["aq-push"].tags == frozenset({"park"})


def test_rules_select_by_registered_kinds_only() -> None:
    rule = ("id: r\ntitle: t\nsources: {{kinds: [{kind}]}}\n"
            "condition: {{type: threshold, field: x, above: 1}}\n")
    for kind in source_registry.source_kinds():
        parse_rules(rule.format(kind=kind), "r.yaml")
    with pytest.raises(YamlFileError, match="unknown source kind 'boat' \\(kinds: camera, drone, sensor\\)"):
        parse_rules(rule.format(kind="boat"), "r.yaml")


class CounterSettings(SourceEntry):
    """A traffic counter that reports vehicles per interval (the plugin of this test)."""

    counts: list[int] = Field(min_length=1)


async def run_counter(settings: CounterSettings, context: SourceContext) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for index, count in enumerate(settings.counts):
        await context.sink.reading(Reading(source_id=settings.id, time=start + timedelta(minutes=index),
                                           values={"vehicles": float(count)}, units={"vehicles": "1"}))


COUNTERS = SourceType("counters", CounterSettings, kinds=("counter",), run=run_counter)


class WithCounters(SourcesSettings):
    counters: list[CounterSettings] = Field(default_factory=list)


async def test_a_new_source_type_runs_is_catalogued_and_selectable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a plugin adds: its module (the three declarations above), its list in the sources'
    settings (here a subclass), and its registry entry."""
    monkeypatch.setitem(SOURCE_TYPES, COUNTERS.key, COUNTERS)
    settings = load_settings(None, environ={})
    sources = WithCounters(counters=[CounterSettings(id="count-1", counts=[3, 5, 8], tags=["bridge"])])
    settings = settings.model_copy(update={"sources": sources})
    assert [(t.key, e.id) for t, e in runnable_sources(settings)] == [("counters", "count-1")]
    assert source_catalog(settings)["count-1"].kind == "counter"
    parse_rules("id: r\ntitle: t\nsources: {kinds: [counter]}\ncondition: {type: threshold, field: vehicles, "
                "above: 4}\n", "r.yaml")
    recorder, counters = Recorder(), SourceCounters()
    await asyncio.wait_for(run_sources(settings, recorder, counters), 30)
    published = [decode_event(topic, raw) for topic, raw in recorder.sent]
    assert [(e.source_id, e.values["vehicles"]) for e in published if isinstance(e, Reading)] == [
        ("count-1", 3.0), ("count-1", 5.0), ("count-1", 8.0)]
    assert counters.counts["readings"] == 3
