"""The HTTP client for the service under test.

One ``httpx.Client`` per run: base URL, auth, the smoke markers on every request (run id header, smoke
user, a recognisable User-Agent), per-request timings (client side, network included), and retries on
transient failures only. A write is retried only when the service provably did not process it
(connection refused, 429, 503): after a timeout, a 502 or a 504 it may have, and a retry could
create a duplicate. A request that gets no usable answer (refused, no answer in time, a truncated
body) fails with one line naming the URL and the cause, never with the HTTP library's traceback. Once
the service has left two requests in a row without an answer, the run stops sending: every further
request fails at once, so a hung service costs two timeouts, not one per check.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from cloudrun_smoke import __version__
from cloudrun_smoke.gcp import iam as cloud_run_iam
from cloudrun_smoke.report.excerpt import one_line

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_RETRY_STATUSES = frozenset({429, 502, 503, 504})
WRITE_RETRY_STATUSES = frozenset({429, 503})
RUN_ID_HEADER = "X-Smoke-Run-Id"
TRACE_HEADER = "X-Cloud-Trace-Context"
USER_AGENT = f"cloudrun-smoke/{__version__}"
SILENCES_BEFORE_GIVING_UP = 2


@dataclass(frozen=True)
class Timing:
    method: str
    path: str
    status: int | None
    seconds: float
    attempts: int
    trace: str = ""  # the Cloud Trace id sent: request logs of Cloud Run carry it (and the instance)
    unanswered: bool = False  # no answer within the timeout


class ServiceResponseError(AssertionError):
    """The service answered something the contract does not allow; the message shows what and where."""


class ServiceUnreachable(ServiceResponseError):
    """No usable answer at all: refused, no answer within the timeout, or a body cut short."""


_TRUNCATED = re.compile(r"received (\d+) bytes, expected (\d+)")


def _no_answer(method: str, url: str, error: Exception, attempts: int, seconds: float, timeout: float) -> str:
    """Why a request got no usable answer, in the words an on-call engineer needs."""
    where = f"{method} {url}"
    tries = f" ({attempts} attempts in {seconds:.1f} s)" if attempts > 1 else ""
    if isinstance(error, httpx.ConnectTimeout):
        return f"{where}: could not connect within {timeout:g} s{tries}"
    if isinstance(error, httpx.TimeoutException):
        return f"{where}: no answer within {timeout:g} s (http_timeout){tries}"
    if isinstance(error, httpx.ConnectError):
        return f"{where}: cannot connect ({one_line(str(error), 120)}): is anything listening there?{tries}"
    truncated = _TRUNCATED.search(str(error))
    if truncated:
        got, expected = truncated.groups()
        return f"{where}: response truncated: the connection closed after {got} of {expected} bytes{tries}"
    if isinstance(error, httpx.RemoteProtocolError):
        return (
            f"{where}: the connection closed without a complete answer ({one_line(str(error), 160)}){tries}"
        )
    return f"{where}: {type(error).__name__}: {one_line(str(error), 160)}{tries}"


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
            headers={
                **self.headers,
                **({RUN_ID_HEADER: self.run_id} if self.run_id else {}),
                "User-Agent": USER_AGENT,
            },
            timeout=self.timeout,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

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
        __tracebackhide__ = True  # a failure here is the service's answer: the check's line is what matters
        self._give_up_if_silent(method, path, params)
        started = time.perf_counter()
        attempts = 0
        response: httpx.Response | None = None
        trace = secrets.token_hex(16)
        headers = {TRACE_HEADER: f"{trace}/{secrets.randbits(63) or 1};o=1"}
        failure = ""
        unanswered = False
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
        except httpx.HTTPError as e:
            url = self._client.build_request(method, path, params=params).url
            elapsed = time.perf_counter() - started
            failure = _no_answer(method, str(url), e, attempts, elapsed, self.timeout)
            unanswered, response = isinstance(e, httpx.TimeoutException), None
        finally:
            status = response.status_code if response is not None else None
            elapsed = time.perf_counter() - started
            self.timings.append(Timing(method, path, status, elapsed, attempts, trace, unanswered))
        if failure:
            raise ServiceUnreachable(failure)
        assert response is not None
        return response

    def _give_up_if_silent(self, method: str, path: str, params: Mapping[str, Any] | None) -> None:
        __tracebackhide__ = True
        recent = self.timings[-SILENCES_BEFORE_GIVING_UP:]
        if len(recent) < SILENCES_BEFORE_GIVING_UP or not all(t.unanswered for t in recent):
            return
        url = self._client.build_request(method, path, params=params).url
        unanswered = ", ".join(f"{t.method} {t.path}" for t in recent)
        raise ServiceUnreachable(
            f"{method} {url}: not sent: the service left its last {len(recent)} requests without an answer "
            f"within {self.timeout:g} s ({unanswered})"
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json_body=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


def describe_response(response: httpx.Response, limit: int = 300) -> str:
    """Status, URL and a one-line excerpt of the body: what an on-call engineer needs to see first.
    A refusal by Cloud Run IAM says so instead of quoting Google's HTML page."""
    request = response.request
    status = f"{response.status_code} {response.reason_phrase}".rstrip()
    iam = cloud_run_iam.explain(response)
    if iam:
        return f"{request.method} {request.url} → {status} (Google's HTML page): {iam}"
    body = one_line(response.text, limit)
    if len(response.content) > limit:
        body += f" ({len(response.content)} bytes)"
    content_type = response.headers.get("content-type", "?")
    return f"{request.method} {request.url} → {status} ({content_type}): {body or '(empty body)'}"


def expect_json(response: httpx.Response, status: int | tuple[int, ...], what: str) -> Any:
    """The decoded JSON body, or a clear failure naming what was expected and what came instead."""
    __tracebackhide__ = True
    allowed = (status,) if isinstance(status, int) else status
    if response.status_code not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ServiceResponseError(f"{what}: expected HTTP {expected}, got {describe_response(response)}")
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:  # not JSON, or not even text (invalid UTF-8)
        content_type = response.headers.get("content-type", "no content type").split(";")[0]
        raise ServiceResponseError(
            f"{what}: expected JSON, got {content_type}: {describe_response(response)}"
        ) from None
