from pathlib import Path

import pytest

from citywatch.settings import Settings, SettingsError, load_settings
from detectors.config import OnnxYoloModel
from ingest.settings_base import Secret, SigningKey, Strict, secret_paths
from notifier.sms import KIND as SMS

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """\
broker:
  url: kafka://k:9092
sources:
  cameras:
    - id: cam-1
      url: video.avi
channels:
  sms:
    account_sid: AC00000000000000000000000000000000
    from_number: "+15005550006"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "citywatch.yaml"
    path.write_text(text)
    return path


def test_repository_example_is_valid() -> None:
    settings = load_settings(ROOT / "citywatch.yaml", environ={})
    assert settings.sources.cameras and settings.sources.air_quality and settings.models
    model = settings.models[0]
    assert isinstance(model, OnnxYoloModel) and model.path.is_absolute()


def test_the_production_settings_in_compose_are_valid() -> None:
    settings = load_settings(ROOT / "compose" / "citywatch.yaml", environ={})
    assert settings.storage.write_connections <= settings.storage.pool_size


def test_unknown_key_is_an_error_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("      url: video.avi", "      url: video.avi\n      fsp: 3"))
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ={})
    assert f"{path}:7:7: sources.cameras.0.fsp: unknown key" in str(info.value)


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "storage:\n  batch_size: lots\n")
    with pytest.raises(SettingsError, match=r"citywatch.yaml:12:3: storage.batch_size"):
        load_settings(path, environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    settings = load_settings(path, environ={
        "CITYWATCH_BROKER__URL": "kafka://prod:9092",
        "CITYWATCH_STORAGE__BATCH_SIZE": "50",
        "CITYWATCH_RULES__PATHS": '["/etc/rules"]',
    })
    assert settings.broker.url == "kafka://prod:9092"
    assert settings.storage.batch_size == 50
    assert settings.rules.paths == [Path("/etc/rules")]
    assert settings.sources.cameras[0].url == str(tmp_path / "video.avi")


def test_misspelt_environment_variable_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    with pytest.raises(SettingsError, match="environment CITYWATCH_BROKR__URL"):
        load_settings(path, environ={"CITYWATCH_BROKR__URL": "x"})


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    auth_token: hunter2\n")
    with pytest.raises(SettingsError, match="CITYWATCH_CHANNELS__SMS__AUTH_TOKEN"):
        load_settings(path, environ={})


def test_secrets_come_from_env_or_secrets_file_and_never_print(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("CITYWATCH_CHANNELS__SMS__AUTH_TOKEN=from-file-token\n")
    settings = load_settings(path, environ={"CITYWATCH_SECRETS_FILE": str(secrets)})
    sms = settings.channels.of(SMS)
    assert sms and sms.auth_token
    assert sms.auth_token.get_secret_value() == "from-file-token"
    assert "from-file-token" not in settings.model_dump_json() and "from-file-token" not in repr(settings)
    env_wins = load_settings(path, environ={"CITYWATCH_SECRETS_FILE": str(secrets),
                                            "CITYWATCH_CHANNELS__SMS__AUTH_TOKEN": "env-token"})
    sms = env_wins.channels.of(SMS)
    assert sms and sms.auth_token
    assert sms.auth_token.get_secret_value() == "env-token"


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_default_secrets_file_follows_the_effective_state_dir(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    state = tmp_path / "elsewhere"
    state.mkdir()
    (state / "secrets.env").write_text("CITYWATCH_CHANNELS__SMS__AUTH_TOKEN=t0k3n\n")
    settings = load_settings(path, environ={"CITYWATCH_INFRA__STATE_DIR": str(state)})
    sms = settings.channels.of(SMS)
    assert sms and sms.auth_token
    assert sms.auth_token.get_secret_value() == "t0k3n"


def test_pipelines_pick_steps_by_source_then_tag_then_default(tmp_path: Path) -> None:
    text = MINIMAL.replace("      url: video.avi\n", "      url: video.avi\n      tags: [street]\n") + """\
models:
  - {name: yolo, type: onnx-yolo, path: y.onnx}
  - {name: hog, type: opencv-hog}
pipelines:
  default: [{model: hog}]
  tags:
    street:
      - {model: yolo, classes: [person]}
      - {model: hog, when: {model: yolo, classes: [person]}}
  sources:
    cam-9: [{model: yolo, stride: 5}]
"""
    settings = load_settings(write(tmp_path, text), environ={})
    assert [s.model for s in settings.steps_for("cam-1")] == ["yolo", "hog"]  # by tag
    assert [(s.model, s.stride) for s in settings.steps_for("cam-9")] == [("yolo", 5)]
    assert [s.model for s in settings.steps_for("other")] == ["hog"]
    bad = text.replace("      - {model: yolo, classes: [person]}\n", "").replace(
        "      - {model: hog, when: {model: yolo, classes: [person]}}\n",
        "      - {model: hog, when: {model: yolo, classes: [person]}}\n      - {model: yolo}\n")
    with pytest.raises(SettingsError, match="depends on 'yolo', which must run before it"):
        load_settings(write(tmp_path, bad), environ={})


def test_snapshots_follow_the_state_dir_unless_set(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    moved = load_settings(path, environ={"CITYWATCH_INFRA__STATE_DIR": str(tmp_path / "state")})
    assert moved.pipelines.snapshot_dir == tmp_path / "state" / "snapshots"
    chosen = load_settings(path, environ={"CITYWATCH_PIPELINES__SNAPSHOT_DIR": "evidence"})
    assert chosen.pipelines.snapshot_dir == tmp_path / "evidence"


def test_the_documented_notification_settings_are_valid(tmp_path: Path) -> None:
    import re
    from datetime import UTC, datetime

    text = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    (tmp_path / "citywatch.yaml").write_text(block.group(1))
    settings = load_settings(tmp_path / "citywatch.yaml")
    on_call = settings.directory.schedules["ops"]
    assert on_call.on_call(datetime(2026, 12, 25, 12, tzinfo=UTC)) == "lead"  # the holiday override
    assert on_call.on_call(datetime(2026, 1, 13, 12, tzinfo=UTC)) == "bo"


def test_retention_settings_name_known_tables_and_prune_old_snapshots(tmp_path: Path) -> None:
    import os
    from datetime import timedelta

    from storage.retention import prune_files

    (tmp_path / "citywatch.yaml").write_text("storage: {retention_days: {detections: 30}}\n")
    settings = load_settings(tmp_path / "citywatch.yaml")
    assert settings.storage.retention["detections"] == timedelta(days=30)
    assert settings.storage.retention["alerts"] == timedelta(days=730)  # the default stays
    (tmp_path / "citywatch.yaml").write_text("storage: {retention_days: {detectoins: 30}}\n")
    with pytest.raises(SettingsError, match="no retention for detectoins"):
        load_settings(tmp_path / "citywatch.yaml")
    folder = tmp_path / "snapshots" / "cam-1"
    folder.mkdir(parents=True)
    old, new = folder / "old.jpg", folder / "new.jpg"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    forty_days_ago = old.stat().st_mtime - 40 * 86400
    os.utime(old, (forty_days_ago, forty_days_ago))
    assert prune_files(tmp_path / "snapshots", timedelta(days=30)) == 1
    assert not old.exists() and new.exists()


def test_the_writer_never_takes_more_connections_than_the_pool_has(tmp_path: Path) -> None:
    (tmp_path / "citywatch.yaml").write_text("storage: {pool_size: 8, write_connections: 4}\n")
    assert load_settings(tmp_path / "citywatch.yaml").storage.write_connections == 4
    (tmp_path / "citywatch.yaml").write_text("storage: {pool_size: 2, write_connections: 4}\n")
    with pytest.raises(SettingsError, match="exceeds pool_size"):
        load_settings(tmp_path / "citywatch.yaml")


@pytest.mark.parametrize(("variable", "value", "why"), [
    ("CITYWATCH_CONSOLE__SESSION_SECRET", "change-me-to-a-long-random-string", "placeholder"),
    ("CITYWATCH_CONSOLE__ACK_SECRET", "short-but-real-7f3a", "too short"),
    ("CITYWATCH_CHANNELS__SMS__AUTH_TOKEN", "your-twilio-auth-token", "placeholder"),
])
def test_placeholder_and_short_secrets_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, why: str,
) -> None:
    config = tmp_path / "citywatch.yaml"
    config.write_text('channels:\n  sms: {account_sid: "AC' + "1" * 32 + '", from_number: "+15005550006"}\n')
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=why) as info:
        load_settings(config)
    assert value not in str(info.value)  # never echoed


def test_the_shipped_secrets_example_would_be_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = Path(__file__).resolve().parents[2] / "compose" / "secrets.env.example"
    config = tmp_path / "citywatch.yaml"
    config.write_text("")
    monkeypatch.setenv("CITYWATCH_SECRETS_FILE", str(example))
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings(config)


def test_secret_keys_are_found_from_the_models_not_a_list() -> None:
    class Provider(Strict):
        token: Secret = None
        tokens: tuple[str, ...] = ()

    class Plugin(Strict):
        key: SigningKey = None
        provider: Provider | None = None
        name: str = ""

    assert secret_paths(Plugin, ("channels", "voice")) == {
        ("channels", "voice", "key"), ("channels", "voice", "provider", "token")}
    assert secret_paths(Settings) == {
        ("channels", "email", "password"), ("channels", "sms", "auth_token"),
        ("channels", "voice", "auth_token"), ("channels", "webhook", "secret"), ("console", "ack_secret"),
        ("console", "session_secret"), ("sources", "mqtt", "password")}
