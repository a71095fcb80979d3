"""`openalgo_lab.connect()`: the one way a notebook, script or widget gets a Client.

Which engine a Client talks to is decided here, once, in this order:

1. `url` / `api_key` given, or `OPENALGO_LAB_URL` / `OPENALGO_LAB_API_KEY` set: that
   OpenAlgo-compatible server, with that API key (`url` is the official client's `host`,
   e.g. `http://127.0.0.1:8888/openalgo`; with a key alone, the parent server's). The feed
   is `{url}/ws` unless `OPENALGO_LAB_WS_URL` names another (OpenAlgo serves its own on
   port 8765).
2. Inside a kernel started by a Jupyter server that hosts OpenAlgo Lab: that server's engine,
   through session tokens obtained with the server's own token (see `client.discovery`).
3. Otherwise the embedded engine, in this process (`embedded=True` asks for it directly).

One engine owns trading state per data directory (DESIGN.md), so a kernel of a JupyterLab
running the extension must use the extension's engine, never start a second one beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from openalgo_lab.client.api import Client

ENV_URL = "OPENALGO_LAB_URL"
ENV_KEY = "OPENALGO_LAB_API_KEY"
ENV_WS_URL = "OPENALGO_LAB_WS_URL"  # a feed elsewhere than `{url}/ws` (OpenAlgo's own :8765)


def connect(
    url: str | None = None,
    api_key: str | None = None,
    *,
    embedded: bool | None = None,
    data_dir: str | Path | None = None,
    account: str | None = None,
    market_hours: str | None = None,
) -> Client:
    """A Client for the running engine.

    `embedded=None` (the default) picks a remote server when one is named or found, else the
    embedded engine; `embedded=False` insists on a remote server (RuntimeError saying what
    was tried when there is none); `embedded=True` starts an engine in this process on
    `data_dir` (default: the `OPENALGO_LAB_DATA_DIR` setting), whose sandbox trades at any
    hour with `market_hours="always"` (default: `OPENALGO_LAB_MARKET_HOURS`, else real
    sessions). `account` picks the account of the embedded engine or of the parent server's
    session tokens; an API key already names its account.
    """
    if embedded is True:
        if url is not None or api_key is not None:
            raise ValueError(
                "url and api_key name a remote server, embedded=True runs the engine in this "
                "process: pass one or the other"
            )
        return _embedded(data_dir, account, market_hours)
    tried: list[str] = []
    client = _named_server(url, api_key, account) or _parent_server(account, tried)
    if client is not None:
        if data_dir is not None or market_hours is not None:
            client.close()
            raise ValueError(
                f"data_dir and market_hours configure the embedded engine, but this Client "
                f"talks to {client.transport!r}: drop them, or pass embedded=True"
            )
        return client
    if embedded is False:
        raise RuntimeError(
            "No OpenAlgo server to connect to. Tried: "
            + "; ".join(tried or ["nothing"])
            + f". Pass url= and api_key=, set {ENV_URL} and {ENV_KEY}, run this in a "
            "JupyterLab that hosts OpenAlgo Lab, or use openalgo_lab.connect(embedded=True)."
        )
    return _embedded(data_dir, account, market_hours)


def _named_server(url: str | None, api_key: str | None, account: str | None) -> Client | None:
    """The server named by the arguments or the environment, if any is named."""
    from openalgo_lab.client.credentials import ApiKey
    from openalgo_lab.client.discovery import find_parent_server
    from openalgo_lab.client.remote import RemoteTransport

    env_url = os.environ.get(ENV_URL, "").strip() or None
    env_key = os.environ.get(ENV_KEY, "").strip() or None
    if url is None and api_key is None and env_url is None and env_key is None:
        return None
    source = "arguments" if url is not None or api_key is not None else "environment"
    if account is not None:
        raise ValueError(
            "account= applies to the embedded engine and the Jupyter server's session tokens; "
            "an API key already names its account"
        )
    key = api_key if api_key is not None else env_key
    target = url if url is not None else env_url
    if not key:
        raise ValueError(
            f"A server url was given ({source}) without an API key: pass api_key= or set {ENV_KEY}"
        )
    if target is None:
        parent = find_parent_server().server
        if parent is None:
            raise ValueError(
                f"An API key was given ({source}) without a url: pass "
                f"url='http://HOST:PORT/openalgo' or set {ENV_URL}"
            )
        target = parent.openalgo_url
    ws_url = os.environ.get(ENV_WS_URL, "").strip() or None
    return Client(RemoteTransport(target, ApiKey(key), ws_url=ws_url))


def _parent_server(account: str | None, tried: list[str]) -> Client | None:
    """The Jupyter server that started this kernel, when it hosts OpenAlgo Lab."""
    from openalgo_lab.client.credentials import TOKEN_ROUTE, CredentialsError, SessionTokens
    from openalgo_lab.client.discovery import find_parent_server
    from openalgo_lab.client.remote import DEFAULT_TIMEOUT, RemoteTransport, new_http_client

    found = find_parent_server()
    tried.extend(found.tried)
    server = found.server
    if server is None:
        return None
    http = new_http_client(DEFAULT_TIMEOUT)
    tokens = SessionTokens(server.root + TOKEN_ROUTE, server.token, http, account=account)
    try:
        tokens.token()
    except CredentialsError as err:
        http.close()
        if err.status == 503 or (err.status == 404 and err.reason.startswith("Account")):
            raise RuntimeError(
                f"The Jupyter server at {server.root} hosts OpenAlgo Lab, but: {err.reason}"
            ) from None
        if err.status == 404:
            tried.append(f"the Jupyter server at {server.root} does not host OpenAlgo Lab")
        else:
            tried.append(f"the Jupyter server at {server.root}: {err}")
        return None
    return Client(RemoteTransport(server.openalgo_url, tokens, http=http))


def _embedded(data_dir: str | Path | None, account: str | None, market_hours: str | None) -> Client:
    from openalgo_lab.client.embedded import EmbeddedTransport
    from openalgo_lab.domain.calendar import MarketHours
    from openalgo_lab.engine.engine import Engine
    from openalgo_lab.engine.settings import EngineSettings

    overrides: dict[str, object] = {}
    if market_hours is not None:
        overrides["market_hours"] = MarketHours(market_hours)
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir).expanduser()
    engine = Engine(EngineSettings.from_env(**overrides))
    return Client(EmbeddedTransport(engine, account=account))
