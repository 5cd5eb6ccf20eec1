"""``--service-url`` and its alias ``--base-url``: call this URL instead of the one the Admin API gives.

``--base-url`` is pytest-base-url's name for the same idea. When that plugin is installed it registers
the option itself (and also reads ``PYTEST_BASE_URL`` and the ``base_url`` ini key); a second
registration would stop pytest before it starts. So the alias is added last, once every plugin and
initial conftest has added its options, and only if none of them has ``--base-url``; either way the
value is read from ``config.option.base_url``. A value that does not come from this invocation's
command line (an inherited ``PYTEST_BASE_URL``, an ini file written for other tests) is ignored and
said so: what the checks call must be explicit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from cloudrun_smoke.errors import SmokeError

ALIAS = "--base-url"


@dataclass(frozen=True)
class UrlOverride:
    url: str  # "" when the Admin API's URL is used
    option: str = ""  # the option that gave it
    note: str = ""  # a value that was ignored, and why


def add_options(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--service-url",
        dest="smoke_service_url",
        default=None,
        help=f"call this URL instead of the one the Admin API gives (discovery still runs); alias {ALIAS}",
    )


def add_alias(parser: pytest.Parser, group: str) -> None:
    """``--base-url``, unless a plugin or conftest already registered it (then its value is used)."""
    if _registered(parser, ALIAS):
        return
    # pytest 9 refuses a duplicate at once (argparse), pytest 8 within one group (ValueError).
    with contextlib.suppress(ValueError, argparse.ArgumentError):
        parser.getgroup(group).addoption(
            ALIAS, dest="base_url", default=None, metavar="url", help="alias of --service-url"
        )


def _registered(parser: pytest.Parser, option: str) -> bool:
    groups = getattr(parser, "_groups", None)  # pytest keeps no public list of the options so far
    if groups is None:
        return False
    return any(option in argument.names() for g in groups for argument in getattr(g, "options", []))


def resolve(config: pytest.Config) -> UrlOverride:
    """The URL the checks call instead of the discovered one, from the options; bad values are one line."""
    service_url = str(config.getoption("smoke_service_url") or "")
    base_url = str(getattr(config.option, "base_url", None) or "")
    note = ""
    if base_url and not _typed(config, ALIAS):
        note = (
            f"{ALIAS} {base_url} ignored: it comes from PYTEST_BASE_URL or a base_url ini key, not from "
            "this command line; pass --service-url to call another URL"
        )
        base_url = ""
    if service_url and base_url and service_url.rstrip("/") != base_url.rstrip("/"):
        raise SmokeError(f"--service-url {service_url} and {ALIAS} {base_url} disagree: give one of them")
    url, option = (service_url, "--service-url") if service_url else (base_url, ALIAS if base_url else "")
    if url:
        _validate(url, option)
    return UrlOverride(url.rstrip("/"), option, note)


def _typed(config: pytest.Config, option: str) -> bool:
    """Whether ``option`` was given to this invocation (its arguments or PYTEST_ADDOPTS)."""
    try:
        extra = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    except ValueError:
        extra = []
    args = [str(a) for a in config.invocation_params.args] + extra
    return any(a == option or a.startswith(f"{option}=") for a in args)


def _validate(url: str, option: str) -> None:
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise SmokeError(
            f"{option} {url!r}: expected an http(s) URL such as https://SERVICE-HASH-uc.a.run.app"
        )
