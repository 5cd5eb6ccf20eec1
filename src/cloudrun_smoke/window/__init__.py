"""The window checks' reading: a time window, its log lines and Cloud Run's metrics over it."""
