"""Secrets out of library logs at DEBUG level (httpcore prints response headers, Set-Cookie included)."""

from __future__ import annotations

import logging

import pytest

from cloudrun_smoke.service import redaction

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzbW9rZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


@pytest.fixture(autouse=True)
def installed() -> None:
    redaction.install()


def test_a_response_header_with_a_session_token_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    headers = [(b"Set-Cookie", f"id_token={JWT}; HttpOnly".encode())]
    logging.getLogger("httpcore.http11").debug("receive_response_headers.complete return_value=%r", headers)
    assert JWT not in caplog.text
    assert "id_token=[redacted]; HttpOnly" in caplog.text


def test_a_registered_secret_is_redacted_in_any_library_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    redaction.register("pw-registered-4471")
    logging.getLogger("google.auth.transport.requests").debug("body: password=pw-registered-4471")
    logging.getLogger("urllib3.connectionpool").debug("Authorization: Bearer ya29.a0AfB_byC-token-value")
    assert "pw-registered-4471" not in caplog.text
    assert "ya29" not in caplog.text
    assert "Bearer [redacted]" in caplog.text


def test_our_own_and_unrelated_loggers_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("emergence.app").debug("fixture token %s", JWT)
    assert f"fixture token {JWT}" in caplog.text


def test_short_values_are_not_registered() -> None:
    redaction.register("abc")
    assert redaction.redact("abc def") == "abc def"


def test_install_is_idempotent() -> None:
    factory = logging.getLogRecordFactory()
    redaction.install()
    assert logging.getLogRecordFactory() is factory
