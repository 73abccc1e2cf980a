"""compose/ validated statically (no Docker engine here): files parse, every service runs a
real CLI command, and every setting its config file and environment name exists."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import click
import pytest
from dotenv import dotenv_values
from ruamel.yaml import YAML

from citywatch.cli import main
from citywatch.settings import load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def load(name: str) -> Any:
    return YAML(typ="safe").load((COMPOSE / name).read_text())


COMPOSE_FILE = load("compose.yaml")
SERVICES: dict[str, Any] = COMPOSE_FILE["services"]
CITYWATCH_SERVICES = sorted(name for name, s in SERVICES.items() if s.get("image") == "citywatch:latest")


BROKERS = ("kafka-1", "kafka-2", "kafka-3")


def test_the_expected_services_exist() -> None:
    assert {*BROKERS, "timescaledb", "worker", "console", "prometheus"} <= set(SERVICES)
    for broker in BROKERS:
        assert "controller" in SERVICES[broker]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert SERVICES["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert "container_name" not in SERVICES["worker"] and "ports" not in SERVICES["worker"]  # --scale


@pytest.mark.parametrize("service", CITYWATCH_SERVICES)
def test_service_runs_an_existing_cli_command(service: str) -> None:
    command: click.Command = main
    for word in SERVICES[service]["command"]:
        assert isinstance(command, click.Group), f"{service}: {word!r} follows a plain command"
        assert word in command.commands, f"{service}: no such command {word!r}"
        command = command.commands[word]
    assert not isinstance(command, click.Group)


@pytest.mark.parametrize("service", CITYWATCH_SERVICES)
def test_service_settings_and_environment_are_valid(service: str) -> None:
    spec = SERVICES[service]
    environment = {k: str(v) for k, v in spec["environment"].items()}
    for env_file in spec["env_file"]:
        example = COMPOSE / f"{env_file}.example"
        assert example.exists(), f"{service}: {env_file} has no documented example"
        # the example's keys, with real values in place of its placeholders (which are refused)
        environment.update({k: uuid4().hex * 2 for k in dotenv_values(example)})
    mounts = dict(reversed(m.split(":")[:2]) for m in spec["volumes"] if m.startswith("."))
    config_in_container = environment.pop("CITYWATCH_CONFIG")
    host_config = COMPOSE / mounts[config_in_container]
    settings = load_settings(host_config, environ=environment)  # raises on any unknown key
    assert settings.broker.url == "kafka://kafka-1:9092;kafka-2:9092;kafka-3:9092"
    for host_path in mounts.values():
        assert (COMPOSE / host_path).exists(), host_path
    if service == "worker":
        assert settings.metrics.port is not None and not settings.worker.run_sources


def test_three_brokers_replicate_everything_and_need_two_in_sync() -> None:
    nodes = {SERVICES[b]["environment"]["KAFKA_NODE_ID"] for b in BROKERS}
    assert nodes == {1, 2, 3}
    for broker in BROKERS:
        env = SERVICES[broker]["environment"]
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{broker}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    assert len({SERVICES[b]["volumes"][0] for b in BROKERS}) == 3  # a disk each
    cluster = {SERVICES[b]["environment"]["CLUSTER_ID"] for b in BROKERS}
    assert len(cluster) == 1 and len(base64.urlsafe_b64decode(cluster.pop() + "==")) == 16  # a UUID
    settings = load_settings(COMPOSE / "citywatch.yaml")
    assert settings.broker.replication_factor == 3  # CityWatch's topics and Faust's changelogs too
    assert settings.broker.bootstrap_servers == "kafka-1:9092,kafka-2:9092,kafka-3:9092"


def test_workers_update_one_at_a_time_and_get_time_to_stop() -> None:
    worker = SERVICES["worker"]
    assert worker["deploy"]["update_config"]["parallelism"] == 1
    grace = int(worker["stop_grace_period"].rstrip("s"))
    assert grace > load_settings(COMPOSE / "citywatch.yaml").worker.stop_timeout_s  # it exits by itself first


def test_prometheus_scrapes_the_worker_metrics_port() -> None:
    port = int(SERVICES["worker"]["environment"]["CITYWATCH_METRICS__PORT"])
    jobs = load("prometheus.yml")["scrape_configs"]
    targets = [sd for job in jobs for sd in job["dns_sd_configs"]]
    assert any(sd["names"] == ["worker"] and sd["port"] == port for sd in targets)


def test_dockerfile_copies_what_exists() -> None:
    text = (COMPOSE / "Dockerfile").read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for source in sources.split():
            assert (COMPOSE.parent / source).exists(), source
    assert 'ENTRYPOINT ["citywatch"]' in text
