"""The service's exception family. Each carries the HTTP status it maps to."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 500


class ConfigError(ServiceError):
    """A setting has a bad value; raised at start-up, never per request."""


class BadRequest(ServiceError):
    """The client sent something invalid; ``field`` names the offending input."""

    status_code = 422

    def __init__(self, field: str, message: str, status_code: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status_code = status_code


class NotFound(ServiceError):
    status_code = 404


class Unauthorized(ServiceError):
    """No usable credentials on an admin endpoint."""

    status_code = 401


class Forbidden(ServiceError):
    """Credentials given, but not the right ones."""

    status_code = 403


class Unavailable(ServiceError):
    """A dependency is saturated or down; the client should retry later."""

    status_code = 503

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CorpusMismatch(ServiceError):
    """The corpus was embedded by a different model than the one configured."""

    status_code = 409


class EmbeddingError(ServiceError):
    """The embedder failed (model missing, remote endpoint down)."""

    status_code = 503
