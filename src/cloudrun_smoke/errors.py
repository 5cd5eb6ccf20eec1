"""Errors the harness reports as one clear line instead of a traceback."""


class SmokeError(Exception):
    """A problem the user can act on; its message is the whole report."""


class ConfigError(SmokeError):
    """smoke.toml, an option or a SMOKE_* variable is missing, unknown or malformed."""
