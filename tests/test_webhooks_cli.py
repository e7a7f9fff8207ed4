"""The webhook commands: ``herald webhooks`` serves, ``herald webhooks urls`` says what to
register, ``herald channels check`` names the secrets webhooks lack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from herald.config import parse_channels
from herald.contract.errors import ConfigError
from herald.testing.sandbox.callbacks import SENDGRID_EVENT_PUBLIC_KEY, reply_call, signed

runner = CliRunner()

CHANNELS = """
[channels.wa]
type = "whatsapp"
phone_number_id = "1"
access_token = "t"

[channels.sms]
type = "twilio_sms"
account_sid = "AC00000000000000000000000000000001"
auth_token = "t"
from_number = "+15005550006"

[channels.mail]
type = "email_smtp"
host = "127.0.0.1"
from_address = "shop@herald.test"
"""


@pytest.mark.usefixtures("herald_env")
def test_channels_check_names_what_webhooks_lack(tmp_path: Path) -> None:
    from herald.cli import cli

    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS)
    result = runner.invoke(cli, ["channels", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "channel wa: no app_secret, verify_token" in result.output
    assert "channel sms" not in result.output.split("ok")[0].split("│")[-1]


@pytest.mark.usefixtures("herald_env")
def test_webhooks_urls_prints_each_channels_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herald.cli import cli

    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS)
    monkeypatch.setenv("HERALD_CHANNELS_FILE", str(path))
    monkeypatch.setenv("HERALD_WEBHOOKS_PUBLIC_URL", "https://hooks.example/")
    result = runner.invoke(cli, ["webhooks", "urls"])
    assert result.exit_code == 0, result.output
    assert "https://hooks.example/webhooks/wa" in result.output
    assert "https://hooks.example/webhooks/sms" in result.output
    assert "no webhook" in result.output  # SMTP


def test_webhook_settings_are_checked() -> None:
    base = '[channels.x]\ntype = "{type}"\n{body}\n'
    with pytest.raises(ConfigError, match="webhook_secret"):
        parse_channels(base.format(type="telegram", body='bot_token = "t"\nwebhook_secret = "a b"'))
    with pytest.raises(ConfigError, match="event_public_key"):
        parse_channels(
            base.format(
                type="sendgrid",
                body='api_key = "k"\nfrom_address = "a@b.c"\nevent_public_key = "bm90IGEga2V5"',
            )
        )
    good = (
        f'api_key = "k"\nfrom_address = "a@b.c"\nevent_public_key = "{SENDGRID_EVENT_PUBLIC_KEY}"'
    )
    assert parse_channels(base.format(type="sendgrid", body=good))["x"]


def test_herald_webhooks_serves_until_stopped(herald_env: dict[str, str], webhooks: object) -> None:
    # Given the command itself, as an operator runs it
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **herald_env, "HERALD_WEBHOOKS_BIND": f"127.0.0.1:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "herald.cli", "webhooks", "--loglevel=warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/webhooks/wa"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/webhooks/-", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "herald webhooks did not start"
                time.sleep(0.1)
        call = reply_call("whatsapp", "351900000001", "hi", number=time.time_ns() % 10**9)
        assert call is not None
        answer = httpx.post(url, content=call.body, headers=signed(call, url))
        assert answer.status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert process.returncode in (0, -15), err
    assert b"Traceback" not in err
