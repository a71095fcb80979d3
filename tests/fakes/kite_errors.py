"""Kite's error envelope and the JSON edge shared by the fake's modules.

Kite answers every failure as `{"status": "error", "message": ..., "data": null,
"error_type": ...}` with an HTTP status that goes with the type; the official SDK raises the
exception class named by `error_type` and keeps the HTTP status as `.code`, so both must be right.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


class KiteError(Exception):
    """A request Kite refuses; becomes the error envelope with `status`."""

    def __init__(self, error_type: str, message: str, status: int) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {
            "status": "error",
            "message": self.message,
            "data": None,
            "error_type": self.error_type,
        }


def input_error(message: str) -> KiteError:
    """Missing or invalid parameters (HTTP 400)."""
    return KiteError("InputException", message, 400)


def token_error(message: str = "Incorrect `api_key` or `access_token`.") -> KiteError:
    """No session, or the session expired or was invalidated (HTTP 403)."""
    return KiteError("TokenException", message, 403)


def order_error(message: str) -> KiteError:
    """An order operation the OMS refuses in its current state (HTTP 400)."""
    return KiteError("OrderException", message, 400)


def general_error(message: str, status: int = 500) -> KiteError:
    return KiteError("GeneralException", message, status)


def network_error(message: str = "Too many requests", status: int = 429) -> KiteError:
    return KiteError("NetworkException", message, status)


def kite_timestamp(at: datetime | None) -> str | None:
    """Kite's `YYYY-MM-DD HH:MM:SS`, exchange time (IST), no zone."""
    if at is None:
        return None
    return at.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


def kite_number(value: Decimal) -> int | float:
    """Kite writes `72` for a whole price and `109.4` otherwise: keep that distinction."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return kite_number(value)
    if isinstance(value, datetime):
        return kite_timestamp(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(payload: object) -> str:
    return json.dumps(payload, default=_default)
