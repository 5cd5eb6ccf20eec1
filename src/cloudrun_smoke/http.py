"""The HTTP client for the service under test.

One ``httpx.Client`` per run: base URL, auth, the smoke markers on every request (run id header, smoke
user, a recognisable User-Agent), per-request timings (client side, network included), and retries on
transient failures only. A write is retried only when the service provably did not process it
(connection refused, 429, 503): after a timeout, a 502 or a 504 it may have, and a retry could
create a duplicate.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from cloudrun_smoke import __version__

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_RETRY_STATUSES = frozenset({429, 502, 503, 504})
WRITE_RETRY_STATUSES = frozenset({429, 503})
RUN_ID_HEADER = "X-Smoke-Run-Id"
TRACE_HEADER = "X-Cloud-Trace-Context"
USER_AGENT = f"cloudrun-smoke/{__version__}"


@dataclass(frozen=True)
class Timing:
    method: str
    path: str
    status: int | None
    seconds: float
    attempts: int
    trace: str = ""  # the Cloud Trace id sent: request logs of Cloud Run carry it (and the instance)


class ServiceResponseError(AssertionError):
    """The service answered something the contract does not allow; the message shows what and where."""


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff for transient failures (exponential, with jitter, bounded in time)."""

    attempts: int = 4
    initial_wait: float = 0.25
    max_wait: float = 4.0
    max_total: float = 20.0


class _Transient(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retryable_error(method: str, error: BaseException) -> bool:
    if isinstance(error, httpx.ConnectError):
        return True  # refused or unreachable: the request never reached the service
    return method in READ_METHODS and isinstance(error, httpx.TransportError)


@dataclass
class ServiceClient:
    base_url: str
    headers: Mapping[str, str] = field(repr=False)  # may carry a token: never in a report
    run_id: str = ""
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy, repr=False)
    timings: list[Timing] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={**self.headers, RUN_ID_HEADER: self.run_id, "User-Agent": USER_AGENT},
            timeout=self.timeout,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def with_headers(self, headers: Mapping[str, str]) -> ServiceClient:
        """A client sharing this run's markers and timings but acting as someone else (e.g. a second user)."""
        return ServiceClient(self.base_url, headers, self.run_id, self.timeout, self.retry, self.timings)

    def request(
        self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        method = method.upper()
        retry_statuses = READ_RETRY_STATUSES if method in READ_METHODS else WRITE_RETRY_STATUSES
        policy = self.retry
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_after_delay(policy.max_total),
            wait=tenacity.wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait),
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, _Transient) or _retryable_error(method, e)
            ),
            reraise=True,
        )
        started = time.perf_counter()
        attempts = 0
        response: httpx.Response | None = None
        trace = secrets.token_hex(16)
        headers = {TRACE_HEADER: f"{trace}/{secrets.randbits(63) or 1};o=1"}
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    response = self._client.request(
                        method, path, json=json_body, params=params, headers=headers
                    )
                    if response.status_code in retry_statuses:
                        raise _Transient(response)
        except _Transient as e:
            response = e.response
        finally:
            status = response.status_code if response is not None else None
            self.timings.append(Timing(method, path, status, time.perf_counter() - started, attempts, trace))
        assert response is not None
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json_body=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


def describe_response(response: httpx.Response, limit: int = 600) -> str:
    """Status, URL and an excerpt of the body: what an on-call engineer needs to see first."""
    request = response.request
    body = response.text
    if len(body) > limit:
        body = body[:limit] + f"... ({len(response.content)} bytes)"
    content_type = response.headers.get("content-type", "?")
    return (
        f"{request.method} {request.url} → {response.status_code} ({content_type}): {body or '(empty body)'}"
    )


def expect_json(response: httpx.Response, status: int | tuple[int, ...], what: str) -> Any:
    """The decoded JSON body, or a clear failure naming what was expected and what came instead."""
    allowed = (status,) if isinstance(status, int) else status
    if response.status_code not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ServiceResponseError(f"{what}: expected HTTP {expected}, got {describe_response(response)}")
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except json.JSONDecodeError:
        raise ServiceResponseError(
            f"{what}: expected a JSON body, got {describe_response(response)}"
        ) from None
