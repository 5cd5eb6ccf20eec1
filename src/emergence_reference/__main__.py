"""``python -m emergence_reference [--fault NAME ...]``: serve the reference service like a Cloud Run container.

Listens on ``$HOST``:``$PORT`` (default 127.0.0.1:8080), keeps its data in ``$EMERGENCE_DATA_DIR``
(created if missing; a temporary directory removed at exit when unset) unless ``$DATABASE_URL``
(``sqlite:///PATH``) and ``$CHROMA_HOST``/``$CHROMA_PORT`` name stores shared with other instances,
and switches on the faults named by ``--fault`` and ``$EMERGENCE_FAULTS``. A setting it cannot use ends the process at once with exit
status 2 and one line on stderr, so that a launcher sees the reason instead of a revision that never
gets ready. SIGTERM shuts down gracefully and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from emergence_reference import faults
from emergence_reference.config import (
    DATA_DIR_ENV,
    DEFAULT_HOST,
    DEFAULT_JWT_SECRET,
    JWT_SECRET_ENV,
    ConfigError,
    Settings,
    allowlist_from_env,
    chroma_from_env,
    database_path_from_env,
    dev_bypass_from_env,
    port_from_env,
)

PROG = "emergence_reference"
EXIT_USAGE = 2
# Cloud Run allows 10 s between SIGTERM and SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 8


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Serve the EmergenceV8 reference service like a Cloud Run container.",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help=f"switch a fault or variant on (repeatable; merged with ${faults.ENV_VAR}); see --list-faults",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=2,
        metavar="N",
        help="consolidation queue workers per process (default 2): how many archived threads consolidate at once",
    )
    parser.add_argument(
        "--list-faults", action="store_true", help="print the known faults and correct variants, then exit"
    )
    return parser.parse_args(argv)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Uvicorn re-raises the signal it shut down for; ending with SystemExit lets cleanup run.
    raise SystemExit(0)


def _slow_start(seconds: float) -> None:
    """The slow-start variant: a cold start that keeps the port closed for a while (SIGTERM still works)."""
    logging.getLogger(PROG).info("Cold start: warming up for %gs before listening", seconds)
    time.sleep(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.list_faults:
        print(faults.listing())
        return 0

    env = os.environ
    try:
        # Validate every setting before touching the disk or importing the web stack.
        fault_set = faults.FaultSet.from_names([*faults.split_names(env.get(faults.ENV_VAR)), *args.fault])
        port = port_from_env(env)
        allowlist = allowlist_from_env(env)
        database_path = database_path_from_env(env)
        chroma_host, chroma_port = chroma_from_env(env)
    except (faults.UnknownFaultError, ConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE

    configured_dir = env.get(DATA_DIR_ENV)
    temporary = not configured_dir
    data_dir = Path(configured_dir) if configured_dir else Path(tempfile.mkdtemp(prefix="emergence-ref-"))
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{PROG}: cannot create data directory {data_dir}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    settings = Settings(
        data_dir=data_dir,
        host=env.get("HOST") or DEFAULT_HOST,
        port=port,
        faults=fault_set,
        workers=args.workers,
        dev_bypass_allowed=dev_bypass_from_env(env),
        allowlist=allowlist,
        jwt_secret=env.get(JWT_SECRET_ENV) or DEFAULT_JWT_SECRET,
        database_path=database_path,
        chroma_host=chroma_host,
        chroma_port=chroma_port,
        service=env.get("K_SERVICE"),
        revision=env.get("K_REVISION"),
        configuration=env.get("K_CONFIGURATION"),
    )

    # The web stack is imported only now, so that a refused setting answers at once.
    import uvicorn

    from emergence_reference.app import create_app
    from emergence_reference.logs import configure_logging, uvicorn_log_config

    json_lines = fault_set.on(faults.JSON_LOGS)
    configure_logging(json_lines)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if fault_set.on(faults.SLOW_START):
            _slow_start(fault_set.value(faults.SLOW_START))
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=uvicorn_log_config(json_lines),
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
