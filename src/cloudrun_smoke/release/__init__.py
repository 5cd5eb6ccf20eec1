"""Release actions through the Admin API: rollback, and rollback when the run fails."""
