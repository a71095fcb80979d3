"""The Jupyter server extension against a real Jupyter server (pytest-jupyter).

pytest-jupyter's default base_url is `/a%40b/`, so every request here also checks that the
routes follow the server's base_url.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from openalgo_lab.server_ext.app import OpenAlgoLabApp
from openalgo_lab.store.apikeys import create_key, list_keys, revoke_key

pytest_plugins = ["pytest_jupyter.jupyter_server"]

EXTENSION = "openalgo_lab.server_ext"
ORDER = {
    "strategy": "test",
    "symbol": "SBIN",
    "exchange": "NSE",
    "action": "BUY",
    "quantity": "1",
    "pricetype": "MARKET",
    "product": "MIS",
}
Fetch = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture
def jp_server_config(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    lab: dict[str, Any] = {
        "data_dir": str(tmp_path / "lab-data"),
        "market_hours": "always",
        "order_rate_limit": "1000 per second",
        "api_rate_limit": "1000 per second",
    }
    lab.update(getattr(request, "param", {}))
    return {
        "ServerApp": {"jpserver_extensions": {EXTENSION: True, "jupyter_server_terminals": False}},
        "OpenAlgoLabApp": lab,
    }


class Lab:
    """The started extension and a trading and a read-only key for it."""

    def __init__(self, app: OpenAlgoLabApp, fetch: Fetch) -> None:
        self.app = app
        self.fetch = fetch
        services = app.services
        assert services is not None, app.startup_error
        self.services = services
        self.key = self.new_key("trading")
        self.read_key = self.new_key("read")

    @property
    def state(self) -> Any:
        return self.services.engine.state

    def new_key(self, scope: str) -> str:
        # few bcrypt rounds keep the tests quick; verification reads the cost from the hash
        return create_key(
            self.state, "default", scope, scope, pepper=self.services.pepper, rounds=4
        )

    async def post(
        self,
        action: str,
        body: Any = None,
        *,
        key: str | None = "",
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, HTTPResponse]:
        if raw is None:
            payload = dict(body or {})
            if key is not None:
                payload["apikey"] = key or self.key
            raw = json.dumps(payload).encode()
        response = await self.fetch(
            "openalgo",
            "api",
            "v1",
            action,
            method="POST",
            body=raw,
            headers={"Authorization": "", **(headers or {})},
            raise_error=False,
        )
        return response.code, _json(response), response

    async def get(self, *parts: str, **params: str) -> HTTPResponse:
        response: HTTPResponse = await self.fetch(
            "openalgo",
            "api",
            "v1",
            *parts,
            params=params,
            headers={"Authorization": ""},
            raise_error=False,
        )
        return response


def _json(response: HTTPResponse) -> Any:
    assert response.headers["Content-Type"].startswith("application/json"), response.body
    return json.loads(response.body)


@pytest.fixture
def lab(jp_serverapp: Any, jp_fetch: Fetch, jp_asyncio_loop: Any) -> Lab:
    # the fixtures never run ServerApp._post_start, which is what starts extensions
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    return Lab(jp_serverapp.web_app.settings["openalgo_lab"], jp_fetch)


# -- the engine's lifecycle ---------------------------------------------------------------------
async def test_engine_starts_on_tmp_data_dir_and_stops(
    jp_serverapp: Any, jp_fetch: Fetch, tmp_path: Path
) -> None:
    app: OpenAlgoLabApp = jp_serverapp.web_app.settings["openalgo_lab"]
    r = await jp_fetch("openalgo", "api", "v1", "ping", method="POST", body="{}", raise_error=False)
    assert r.code == 503
    assert "not been started" in json.loads(r.body)["message"]
    await jp_serverapp.extension_manager.start_all_extensions()
    assert app.services is not None
    assert app.services.engine.settings.data_dir == tmp_path / "lab-data"
    assert (tmp_path / "lab-data" / "engine.lock").exists()
    await app.stop_extension()
    assert app.services is None


# -- the OpenAlgo API ---------------------------------------------------------------------------
async def test_placeorder_then_orderstatus(lab: Lab) -> None:
    code, body, _ = await lab.post("placeorder", ORDER)
    assert code == 200, body
    assert body["status"] == "success" and isinstance(body["orderid"], str)
    code, status, _ = await lab.post(
        "orderstatus/", {"orderid": body["orderid"], "strategy": "test"}
    )
    assert code == 200 and status["data"]["orderid"] == body["orderid"]


async def test_nested_action_and_trailing_slash(lab: Lab) -> None:
    code, body, _ = await lab.post("market/holidays/", {"year": 2025})
    assert code == 200 and body["status"] == "success"
    code, body, _ = await lab.post("analyzer/toggle", {"mode": True})
    assert code == 200 and body["data"]["analyze_mode"] is True


async def test_key_in_header_and_domain_error_status(lab: Lab) -> None:
    code, body, _ = await lab.post(
        "placeorder", {**ORDER, "quantity": "-1"}, key=None, headers={"X-API-KEY": lab.key}
    )
    assert code == 400
    assert body["status"] == "error" and "quantity" in body["message"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'"text"', "must be a JSON object, got str"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
async def test_malformed_bodies(lab: Lab, raw: bytes, message: str) -> None:
    code, body, _ = await lab.post("funds", raw=raw)
    assert code == 400
    assert body["status"] == "error" and message in body["message"]


async def test_unknown_action_is_404_json(lab: Lab) -> None:
    code, body, _ = await lab.post("nosuchaction", {})
    assert code == 404
    assert body == {"status": "error", "message": "Unknown API endpoint /api/v1/nosuchaction"}


async def test_oversize_body_is_413(lab: Lab) -> None:
    padding = "x" * (lab.app.max_body_bytes + 10)
    code, body, _ = await lab.post("funds", {"padding": padding})
    assert code == 413
    assert body["status"] == "error" and "larger than the limit" in body["message"]


async def test_get_on_action_is_405_json(lab: Lab) -> None:
    response = await lab.get("funds")
    assert response.code == 405
    assert _json(response)["status"] == "error"


async def test_missing_and_invalid_keys(lab: Lab) -> None:
    code, body, _ = await lab.post("funds", {}, key=None)
    assert code == 401 and "API key is missing" in body["message"]
    code, body, _ = await lab.post("funds", {}, key="0" * 64)
    assert (code, body) == (403, {"status": "error", "message": "Invalid openalgo apikey"})
    # same public prefix, wrong secret part: bcrypt says no
    code, body, _ = await lab.post("funds", {}, key=lab.key[:12] + "0" * 52)
    assert code == 403


async def test_revoked_key_is_refused_even_when_cached(lab: Lab) -> None:
    code, _, _ = await lab.post("funds", {})
    assert code == 200  # now cached
    key_id = lab.key[:12]
    revoke_key(lab.state, key_id)
    lab.services.gate.verifier.invalidate(key_id)
    code, body, _ = await lab.post("funds", {})
    assert code == 403 and body["message"] == "Invalid openalgo apikey"


async def test_read_scope_key_cannot_trade(lab: Lab) -> None:
    code, body, _ = await lab.post("placeorder", ORDER, key=lab.read_key)
    assert code == 403
    assert "read-only" in body["message"] and "placeorder" in body["message"]
    code, body, _ = await lab.post("funds", {}, key=lab.read_key)
    assert code == 200 and body["status"] == "success"


async def test_bad_keys_from_one_address_are_throttled(lab: Lab) -> None:
    for _ in range(10):
        code, _, _ = await lab.post("funds", {}, key="f" * 64)
        assert code == 403
    code, body, response = await lab.post("funds", {}, key="f" * 64)
    assert code == 429 and "invalid API keys" in body["message"]
    assert int(response.headers["Retry-After"]) >= 1
    # a valid key from the same address is throttled too: the address is what is limited
    code, _, _ = await lab.post("funds", {})
    assert code == 429


@pytest.mark.parametrize(
    "jp_server_config",
    [{"order_rate_limit": "2 per minute", "api_rate_limit": "off"}],
    indirect=True,
)
async def test_order_rate_limit_429_with_retry_after(lab: Lab) -> None:
    for _ in range(2):
        code, body, _ = await lab.post("placeorder", ORDER)
        assert code == 200, body
    code, body, response = await lab.post("placeorder", ORDER)
    assert code == 429
    assert body == {
        "status": "error",
        "message": "Rate limit exceeded. Please slow down your requests.",
    }
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # other classes and other keys keep their own allowance
    code, _, _ = await lab.post("funds", {})
    assert code == 200
    other = lab.new_key("trading")
    code, _, _ = await lab.post("placeorder", ORDER, key=other)
    assert code == 200


async def test_idempotency_key_header_and_body_field(lab: Lab) -> None:
    headers = {"Idempotency-Key": "retry-me-1"}
    _, first, _ = await lab.post("placeorder", ORDER, headers=headers)
    _, second, _ = await lab.post("placeorder", ORDER, headers=headers)
    assert first["status"] == "success" and first["orderid"] == second["orderid"]
    _, third, _ = await lab.post("placeorder", {**ORDER, "client_order_id": "retry-me-2"})
    _, fourth, _ = await lab.post("placeorder", {**ORDER, "client_order_id": "retry-me-2"})
    assert third["orderid"] == fourth["orderid"] != first["orderid"]
    code, body, _ = await lab.post("placeorder", ORDER, headers={"Idempotency-Key": "k" * 101})
    assert code == 400 and "Idempotency key" in body["message"]


async def test_apikey_never_reaches_the_journal(lab: Lab) -> None:
    await lab.post("placeorder", ORDER, headers={"Idempotency-Key": "journal-check"})
    journal = lab.services.engine.journal
    assert journal is not None
    entry = journal.lookup("default", "journal-check")
    assert entry is not None
    assert lab.key not in json.dumps(entry.request, default=str)


async def test_instruments_json_csv_and_key_errors(lab: Lab) -> None:
    response = await lab.get("instruments", apikey=lab.key, exchange="NSE")
    assert response.code == 200
    rows = _json(response)["data"]
    assert rows and all(row["exchange"] == "NSE" for row in rows)
    response = await lab.get("instruments", apikey=lab.key, exchange="NSE", format="csv")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    header, *lines = response.body.decode().splitlines()
    assert header.startswith("symbol,") and len(lines) == len(rows)
    missing = await lab.get("instruments", exchange="NSE")
    assert missing.code == 401 and _json(missing)["status"] == "error"
    invalid = await lab.get("instruments", apikey="nope")
    assert invalid.code == 403 and _json(invalid)["message"] == "Invalid openalgo apikey"
    bad_exchange = await lab.get("instruments", apikey=lab.key, exchange="XYZ")
    assert bad_exchange.code == 400


async def test_ticker_json_and_txt(lab: Lab) -> None:
    today = date.today()
    span = {"from": str(today - timedelta(days=20)), "to": str(today)}
    response = await lab.get("ticker", "NSE:SBIN", apikey=lab.key, interval="D", **span)
    assert response.code == 200, response.body
    rows = _json(response)["data"]
    assert rows and isinstance(rows[0]["timestamp"], int)
    response = await lab.get("ticker", "NSE:SBIN", apikey=lab.key, format="txt", **span)
    assert response.code == 200
    assert response.body.decode().splitlines()[0].startswith("NSE:SBIN,")
    response = await lab.get("ticker", "NSE:NOSUCH", apikey=lab.key, **span)
    assert response.code in (400, 404) and _json(response)["status"] == "error"


# -- key management for the Jupyter user --------------------------------------------------------
async def test_key_api_create_use_list_revoke(lab: Lab, jp_fetch: Fetch) -> None:
    r = await jp_fetch(
        "openalgo", "keys", method="POST", body=json.dumps({"scope": "trading", "label": "bot"})
    )
    assert r.code == 201
    created = json.loads(r.body)
    key = created["apikey"]
    assert created["key_id"] == key[:12] and created["account"] == "default"
    code, body, _ = await lab.post("funds", {}, key=key)
    assert code == 200, body

    listing = json.loads((await jp_fetch("openalgo", "keys")).body)["data"]
    mine = next(k for k in listing if k["key_id"] == created["key_id"])
    assert mine["label"] == "bot" and mine["active"] and mine["last_used_at"]
    assert all(key not in json.dumps(k) for k in listing)

    r = await jp_fetch("openalgo", "keys", created["key_id"], method="DELETE")
    assert r.code == 200 and json.loads(r.body)["data"]["active"] is False
    code, body, _ = await lab.post("funds", {}, key=key)
    assert code == 403 and body["message"] == "Invalid openalgo apikey"


async def test_key_api_validation(lab: Lab, jp_fetch: Fetch) -> None:
    r = await jp_fetch(
        "openalgo", "keys", method="POST", body='{"scope": "admin"}', raise_error=False
    )
    assert r.code == 400 and "scope" in json.loads(r.body)["message"]
    r = await jp_fetch(
        "openalgo", "keys", method="POST", body='{"account": "ghost"}', raise_error=False
    )
    assert r.code == 404
    r = await jp_fetch("openalgo", "keys", "unknownkey12", method="DELETE", raise_error=False)
    assert r.code == 404


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_key_api_requires_jupyter_auth(lab: Lab, jp_fetch: Fetch, method: str) -> None:
    parts = ("openalgo", "keys", lab.key[:12]) if method == "DELETE" else ("openalgo", "keys")
    body = "{}" if method == "POST" else None
    r = await jp_fetch(
        *parts, method=method, body=body, headers={"Authorization": ""}, raise_error=False
    )
    assert r.code in (401, 403)
    assert all(k.active for k in list_keys(lab.state))


async def test_key_api_posts_need_xsrf_with_cookie_auth(lab: Lab, jp_fetch: Fetch) -> None:
    # an API key is not a Jupyter credential
    r = await jp_fetch(
        "openalgo",
        "keys",
        method="POST",
        body="{}",
        headers={"Authorization": "", "X-API-KEY": lab.key},
        raise_error=False,
    )
    assert r.code in (401, 403)


# -- configuration ------------------------------------------------------------------------------
def test_rate_limits_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENALGO_LAB_ORDER_RATE_LIMIT", "5 per second")
    monkeypatch.setenv("OPENALGO_LAB_API_RATE_LIMIT", "off")
    app = OpenAlgoLabApp()
    assert app.order_rate_limit == "5 per second"
    assert app.smart_order_rate_limit == "10 per second"
    assert app.api_rate_limit == "off"


def test_bad_rate_limit_trait_is_refused() -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError, match="not understood"):
        OpenAlgoLabApp(order_rate_limit="lots")
    with pytest.raises(TraitError, match="market_hours"):
        OpenAlgoLabApp(market_hours="sometimes")


def test_extension_points_and_shipped_config() -> None:
    import openalgo_lab.server_ext as ext

    (point,) = ext._jupyter_server_extension_points()
    assert point == {"module": EXTENSION, "app": OpenAlgoLabApp}
    config = Path(__file__).parents[1] / "jupyter-config/jupyter_server_config.d/openalgo_lab.json"
    assert json.loads(config.read_text()) == {
        "ServerApp": {"jpserver_extensions": {EXTENSION: True}}
    }


async def test_double_slash_from_a_host_with_trailing_slash(
    lab: Lab, http_server_client: Any, jp_base_url: str
) -> None:
    # the official client builds f"{host}/api/v1/...", so host=".../openalgo/" gives "//"
    response = await http_server_client.fetch(
        f"{jp_base_url}openalgo//api/v1/funds",
        method="POST",
        body=json.dumps({"apikey": lab.key}),
        raise_error=False,
    )
    assert response.code == 200 and _json(response)["status"] == "success"


@pytest.mark.parametrize(
    "jp_server_config", [{"cors_origins": ["https://app.example"]}], indirect=True
)
async def test_cors_only_for_configured_origins(lab: Lab) -> None:
    _, _, allowed = await lab.post("funds", {}, headers={"Origin": "https://app.example"})
    assert allowed.code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    _, _, other = await lab.post("funds", {}, headers={"Origin": "https://evil.example"})
    assert other.code == 200  # the API key, not the origin, authenticates
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = await lab.fetch(
        "openalgo",
        "api",
        "v1",
        "placeorder",
        method="OPTIONS",
        headers={"Authorization": "", "Origin": "https://app.example"},
        raise_error=False,
    )
    assert preflight.code == 204
    assert "X-API-KEY" in preflight.headers["Access-Control-Allow-Headers"]
