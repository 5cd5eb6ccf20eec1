"""The Google API clients, built the same way for Google and for the local stack: only the endpoint
and the credentials differ."""

from __future__ import annotations

from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import SmokeError


def credentials_for(env: Environment) -> Credentials | None:
    """Anonymous on the local stack and for emulators on loopback; Application Default Credentials otherwise."""
    if env.is_local or all(_is_loopback(e) for e in (env.run_api_endpoint, env.logging_api_endpoint)):
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError:
        raise SmokeError(
            f"no Google credentials for environment {env.name!r}: run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file "
            "(roles needed: run.viewer, logging.viewer; monitoring.viewer for the window checks)"
        ) from None
    return credentials


def _is_loopback(endpoint: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(endpoint).hostname in ("127.0.0.1", "localhost", "::1") if endpoint else False


def _options(endpoint: str) -> ClientOptions | None:
    return ClientOptions(api_endpoint=endpoint) if endpoint else None


def run_clients(env: Environment, credentials: Credentials | None) -> tuple[Any, Any]:
    from google.cloud import run_v2

    options = _options(env.run_api_endpoint)
    services = run_v2.ServicesClient(transport="rest", credentials=credentials, client_options=options)
    revisions = run_v2.RevisionsClient(transport="rest", credentials=credentials, client_options=options)
    return services, revisions


def reading_client_class() -> type:
    """``google.cloud.logging.Client`` whose loggers never probe the metadata server.

    Parsing an entry creates a ``Logger`` per log name, and a ``Logger`` without a resource calls
    ``detect_resource()``, which asks metadata.google.internal with a 5 s timeout: off Google Cloud
    that stalls a read for 5 s. A reader never writes through these loggers, so any resource will do.
    """
    from google.cloud import logging as cloud_logging
    from google.cloud.logging_v2.resource import Resource

    class ReadingLoggingClient(cloud_logging.Client):  # type: ignore[misc]
        def logger(self, name: str, *, labels: Any = None, resource: Any = None) -> Any:
            return super().logger(
                name, labels=labels, resource=resource or Resource(type="global", labels={})
            )

    return ReadingLoggingClient


def logging_client(env: Environment, credentials: Credentials | None) -> Any:
    """A Logging client on the JSON API (its reads go page by page: see :mod:`log_pages`)."""
    if credentials is None:
        import google.auth

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/logging.read"])
    kwargs: dict[str, Any] = {
        "project": env.project,
        "credentials": credentials,
        "_use_grpc": False,
        "_http": AuthorizedSession(credentials),
    }
    if env.logging_api_endpoint:
        kwargs["client_options"] = {"api_endpoint": env.logging_api_endpoint}
    return reading_client_class()(**kwargs)


def grpc_host_port(endpoint: str) -> str:
    """``host:port`` for a gRPC channel from ``127.0.0.1:PORT`` or ``http://127.0.0.1:PORT``."""
    from urllib.parse import urlsplit

    return urlsplit(endpoint).netloc if "://" in endpoint else endpoint


def monitoring_client(env: Environment, credentials: Credentials | None) -> Any:
    """A Cloud Monitoring v3 client (gRPC). On loopback an insecure channel to the emulator (gRPC would
    demand TLS otherwise); for Google, the credentials and, if set, the configured endpoint."""
    from google.cloud import monitoring_v3

    endpoint = grpc_host_port(env.monitoring_api_endpoint)
    if endpoint and _is_loopback(f"//{endpoint}"):
        import grpc
        from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

        channel = grpc.insecure_channel(endpoint)
        return monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
    return monitoring_v3.MetricServiceClient(
        credentials=credentials, client_options={"api_endpoint": endpoint} if endpoint else None
    )
