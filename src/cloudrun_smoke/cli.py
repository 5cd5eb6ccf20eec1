"""The ``cloudrun-smoke`` command: one sub-parser per command, each command in its own module.

A command module exposes ``register(subparsers)``, which adds its parser and sets ``handler`` (a
function of the parsed arguments returning the exit status). Problems the user can act on are
:class:`SmokeError`: one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from cloudrun_smoke.errors import SmokeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudrun-smoke",
        description="Post-deploy smoke checks for Cloud Run (run them with `pytest smoke/ --env NAME`).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local = commands.add_parser("local", help="the embedded local stack (Cloud Run and Logging on loopback)")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="SUBCOMMAND")
    from cloudrun_smoke.local import up

    up.register(local_commands)
    from cloudrun_smoke.release import command as rollback_command

    rollback_command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except SmokeError as e:
        print(f"cloudrun-smoke: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
