"""One exception hierarchy for the whole product.

Every error a caller can cause or meet derives from `OpenAlgoError` and carries the HTTP status
the API answers with, so the REST layer maps errors in one place and never guesses.
"""

from __future__ import annotations


class OpenAlgoError(Exception):
    """Base of every error we raise on purpose. `message` is safe to show to the caller."""

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_envelope(self) -> dict[str, str]:
        return {"status": "error", "message": self.message}


class ValidationError(OpenAlgoError):
    """Bad input: names the field and the reason (`quantity: must be a whole number`)."""

    http_status = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFoundError(OpenAlgoError):
    """An order, symbol or account that does not exist."""

    http_status = 404


class OrderRejected(OpenAlgoError):
    """The order was well formed but cannot be accepted now (funds, market closed, state)."""

    http_status = 400


class InsufficientFunds(OrderRejected):
    pass


class InvalidOrderState(OrderRejected):
    """Modify or cancel of an order that is no longer working."""


class MarketClosed(OrderRejected):
    pass


class AuthError(OpenAlgoError):
    """Invalid or missing API key (OpenAlgo answers 403)."""

    http_status = 403


class BrokerSessionExpired(OpenAlgoError):
    """The broker's daily session is gone: the API key is fine, the broker login is not."""

    http_status = 403


class BrokerError(OpenAlgoError):
    """The broker answered with an error or could not be reached."""

    http_status = 500
