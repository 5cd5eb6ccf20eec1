"""Text from outside (a response body, a log line) made fit for a one-line diagnosis.

What a service answers or logs can be anything, of any length: a 2 MB line, invalid bytes, terminal
escape sequences. Diagnostics show it on one line, bounded, with control characters escaped so that
they cannot rewrite the terminal of whoever reads the failure.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed, control characters shown as ``\\xNN``, at most ``limit`` characters."""
    head = text[: limit * 4]  # never scan more than what can be shown (a line may be megabytes long)
    flat = " ".join(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", head).split())
    if len(flat) <= limit and len(head) == len(text):
        return flat
    return flat[: limit - 1] + "…"
