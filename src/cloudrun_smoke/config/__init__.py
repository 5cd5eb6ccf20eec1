"""Configuration: ``smoke.toml``, options and ``SMOKE_*`` variables, validated into one environment."""
