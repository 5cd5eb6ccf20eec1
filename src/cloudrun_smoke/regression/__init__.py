"""Regression checks: the revision under test judged against a baseline revision on the same kind of
traffic, not against fixed thresholds."""
