"""The one error of the emulated filter languages (Cloud Logging queries and Monitoring filters)."""

from __future__ import annotations


class FilterError(ValueError):
    """A filter the emulator cannot evaluate; the message names the problem (and the column where useful)."""
