"""The Cloud Logging query language, as the Logging API emulator evaluates ``entries.list`` filters.

A hand-written recursive-descent parser following Google's "Logging query language" reference, one
concern per module: ``lexer`` (tokens, shared with the Monitoring filter), ``parser`` (grammar and
compile-time checks), ``syntax`` (the tree and its evaluation), ``schema`` (the LogEntry fields),
``values`` (field types and conversions) and ``re2`` (RE2 syntax on Python ``re``).

Whatever the emulator does not implement raises :class:`FilterError` rather than matching
everything, so a smoke check can never pass vacuously on a filter Google would read differently.
"""

from __future__ import annotations

from cloudrun_smoke.local.log_query.errors import FilterError
from cloudrun_smoke.local.log_query.parser import MAX_FILTER_LENGTH, MAX_NESTING, compile_filter
from cloudrun_smoke.local.log_query.syntax import LogFilter

__all__ = ["MAX_FILTER_LENGTH", "MAX_NESTING", "FilterError", "LogFilter", "compile_filter"]
