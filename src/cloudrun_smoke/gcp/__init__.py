"""Google Cloud: the API clients, what the Admin API says is deployed, and Cloud Run's IAM and CPU facts."""
