"""The service under test: its HTTP client, its contract, the run's users and what they created."""
