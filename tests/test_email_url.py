"""EMAIL_URL: one environment variable for the whole mail configuration."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from broadsheet.config.email_url import parse_email_url

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_plain_smtp_defaults_to_port_25_and_no_tls():
    config = parse_email_url("smtp://mail.example.org")
    assert config == {
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": "mail.example.org",
        "EMAIL_PORT": 25,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10,
    }


def test_starttls_uses_587_and_implicit_tls_465():
    tls = parse_email_url("smtp+tls://user:secret@smtp.example.org")
    assert (tls["EMAIL_PORT"], tls["EMAIL_USE_TLS"], tls["EMAIL_USE_SSL"]) == (587, True, False)
    ssl = parse_email_url("smtp+ssl://user:secret@smtp.example.org")
    assert (ssl["EMAIL_PORT"], ssl["EMAIL_USE_TLS"], ssl["EMAIL_USE_SSL"]) == (465, False, True)


def test_user_and_password_are_percent_decoded_and_port_and_timeout_read():
    config = parse_email_url("smtp+tls://news%40example.org:p%40ss%3Aw%2Frd@[::1]:2525?timeout=3")
    assert config["EMAIL_HOST_USER"] == "news@example.org"
    assert config["EMAIL_HOST_PASSWORD"] == "p@ss:w/rd"
    assert config["EMAIL_HOST"] == "::1"
    assert config["EMAIL_PORT"] == 2525
    assert config["EMAIL_TIMEOUT"] == 3


def test_console_prints_mail():
    config = parse_email_url("console://")
    assert config["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


@pytest.mark.parametrize(
    "url, words",
    [
        ("smtps://mail.example.org", "unknown scheme smtps://"),
        ("consolemail://", "unknown scheme consolemail://"),
        ("mail.example.org", "unknown scheme (none)"),
        ("smtp://mail.example.org:port", "port must be a number"),
        ("smtp://", "a host is needed"),
        ("smtp://mail.example.org?timeout=soon", "timeout must be a number"),
    ],
)
def test_a_wrong_url_is_a_clear_configuration_error(url, words):
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL") as error:
        parse_email_url(url)
    assert words in str(error.value)


def settings_in_child(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    env.update(env_extra, DJANGO_SETTINGS_MODULE="broadsheet.config.settings")
    code = (
        "from django.conf import settings as s;"
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_TIMEOUT,"
        " s.DEFAULT_FROM_EMAIL, sep='|')"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_settings_read_email_url_and_the_old_variables_still_work():
    new = settings_in_child(
        {"EMAIL_URL": "smtp+tls://u:p@smtp.example.org", "DEFAULT_FROM_EMAIL": "News <n@ex.org>"}
    )
    assert new.stdout.strip() == f"{SMTP}|smtp.example.org|587|True|10.0|News <n@ex.org>"
    old = settings_in_child({"EMAIL_HOST": "relay.example.org", "EMAIL_PORT": "2525"})
    assert old.stdout.strip().startswith(f"{SMTP}|relay.example.org|2525|False|10|")
    bad = settings_in_child({"EMAIL_URL": "smtps://x"})
    assert bad.returncode != 0
    assert "EMAIL_URL: unknown scheme smtps://" in bad.stderr
