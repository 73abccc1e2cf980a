"""`citywatch devservers` runs the local SMTP server and Twilio endpoint alone, and the
embedded default refuses client ports that disagree with the local servers'."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from citywatch.infra.process import free_port
from citywatch.local_ports import devserver_mismatches, infra_mismatches
from citywatch.settings import load_settings

pytestmark = pytest.mark.integration
DEADLINE_S = 60.0


def settings_file(tmp_path: Path, smtp_port: int, twilio_port: int, email_port: int | None = None) -> Path:
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
devservers: {{smtp_port: {smtp_port}, twilio_port: {twilio_port}, mail_dir: "{tmp_path / 'mail'}",
             sms_file: "{tmp_path / 'sms.jsonl'}"}}
channels:
  email: {{host: 127.0.0.1, port: {email_port or smtp_port}, from_addr: citywatch@localhost}}
  sms: {{account_sid: AC{"0" * 32}, from_number: "+15005550006", api_base_url: "http://127.0.0.1:{twilio_port}"}}
""")
    return config


async def test_the_dev_servers_run_alone_and_take_mail_and_texts(tmp_path: Path) -> None:
    from notifier.channels import Message
    from notifier.sms import SmsChannel, TwilioSettings

    smtp_port, twilio_port = free_port(), free_port()
    config = settings_file(tmp_path, smtp_port, twilio_port)
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped below
        [sys.executable, "-m", "citywatch", "--config", str(config), "devservers"],
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "a@localhost", "ops@example.org", "hello"
            message.set_content("body")
            try:
                await aiosmtplib.send(message, hostname="127.0.0.1", port=smtp_port, timeout=5)
                break
            except (OSError, aiosmtplib.SMTPException):
                assert time.monotonic() < deadline and process.poll() is None, "no SMTP server answered"
                await asyncio.sleep(0.2)
        sms = SmsChannel(TwilioSettings.model_validate({
            "account_sid": "AC" + "0" * 32, "from_number": "+15005550006",
            "api_base_url": f"http://127.0.0.1:{twilio_port}"}))
        try:
            sid = await sms.send("+447700900123", Message(subject="", text="a text"))
        finally:
            await sms.close()
        assert sid.startswith("SM")
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "dev servers stopped" in stderr
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert "a text" in (tmp_path / "sms.jsonl").read_text()


def test_client_ports_that_disagree_with_the_local_servers_are_named(tmp_path: Path) -> None:
    config = settings_file(tmp_path, 11999, 18999, email_port=11025)
    settings = load_settings(config, environ={"CITYWATCH_BROKER__URL": "kafka://127.0.0.1:9092"})
    assert devserver_mismatches(settings) == [
        "channels.email.port is 11025, but the local SMTP server listens on devservers.smtp_port 11999: "
        "change both together"]
    assert [problem.split(",")[0] for problem in infra_mismatches(settings)] == [
        "broker.url points at port 9092"]
    answer = subprocess.run([sys.executable, "-m", "citywatch", "--config", str(config), "devservers"],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 1 and "channels.email.port is 11025" in answer.stderr
    production = load_settings(config, environ={"CITYWATCH_CHANNELS__EMAIL__HOST": "smtp.city.example"})
    assert devserver_mismatches(production) == []  # a server elsewhere is no local client
