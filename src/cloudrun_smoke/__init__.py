"""cloudrun-smoke: post-deploy smoke checks for a Cloud Run service, and a local Cloud Run to run them on."""

__version__ = "0.1.0"
