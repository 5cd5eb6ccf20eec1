"""The scenarios the checks use (defined in ``runbook.py``, registered here as fixtures)."""

from runbook import archive_samples, archived_thread, batch_run, preference_run

__all__ = ["archive_samples", "archived_thread", "batch_run", "preference_run"]
