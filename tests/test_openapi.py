"""The OpenAPI document and docs page, and a schemathesis fuzz of a real server against them.

The document is checked by a validator rather than by eye, because a document that tools
reject is worse than none. The fuzz run is what makes the document worth trusting: every
generated request, valid or not, must get OpenAlgo's JSON envelope and never a 5xx, which
is the promise handlers.py makes to outside callers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from openalgo_lab.engine.actions import ACTIONS
from openalgo_lab.server_ext.openapi import GET_ACTIONS, docs_html, openapi_document
from tests.live_server import BASE_URL, LiveServer, running_server

FUZZ_EXAMPLES_PER_ROUTE = 5  # x 40 routes = about 200 requests
FUZZ_BUDGET_SECONDS = 60.0


def test_document_validates_and_lists_every_action() -> None:
    document = openapi_document(BASE_URL)
    validate(document)
    assert document["servers"] == [{"url": "/lab/openalgo/api/v1"}]
    paths = document["paths"]
    for name, spec in ACTIONS.items():
        if name in GET_ACTIONS:
            continue
        operation = paths[f"/{name}"]["post"]
        assert operation["summary"] == spec.summary
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "apikey" in schema["required"]
        for code in ("400", "401", "403", "404", "429", "500"):
            assert operation["responses"][code] == {"$ref": f"#/components/responses/{code}"}
    assert "get" in paths["/instruments"] and "get" in paths["/ticker/{symbol}"]
    placeorder = paths["/placeorder"]["post"]["requestBody"]["content"]["application/json"]
    assert {"symbol", "exchange", "action", "quantity"} <= set(placeorder["schema"]["required"])
    assert paths["/placeorder"]["post"]["tags"] == ["orders"]
    assert paths["/quotes"]["post"]["tags"] == ["market"]
    assert paths["/orderbook"]["post"]["tags"] == ["account"]


@pytest.mark.parametrize("base", ["/", "", "/a%40b/", "/x/y"])
def test_document_follows_the_base_url(base: str) -> None:
    url = openapi_document(base)["servers"][0]["url"]
    assert url.endswith("/openalgo/api/v1") and "//" not in url


def test_docs_page_is_self_contained() -> None:
    page = docs_html(openapi_document(BASE_URL), "http://127.0.0.1:8888")
    for name in ACTIONS:
        assert f"/lab/openalgo/api/v1/{name}" in page
    assert "<script" not in page.lower()
    hosts = {m.group(1) for m in re.finditer(r"https?://([^/'\"\s<]+)", page)}
    assert hosts == {"127.0.0.1:8888"}
    assert "curl -X POST" in page and "position_size" in page


def test_docs_page_escapes_the_host_header() -> None:
    page = docs_html(openapi_document(BASE_URL), "http://<b>evil</b>")
    assert "<b>evil" not in page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real `jupyter server` with the extension, limits lifted so fuzzing is not all 429s."""
    limits_off = {
        "order_rate_limit": "off",
        "smart_order_rate_limit": "off",
        "api_rate_limit": "off",
    }
    with running_server(tmp_path_factory.mktemp("openapi-server"), limits_off) as live:
        yield live


@pytest.mark.slow
def test_served_document_and_docs_need_no_key(server: LiveServer) -> None:
    served = httpx.get(f"{server.root}openalgo/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == openapi_document(BASE_URL)
    page = httpx.get(f"{server.root}openalgo/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    hosts = {m.group(1) for m in re.finditer(r"https?://([^/'\"\s<]+)", page.text)}
    assert hosts <= {server.root.split("/")[2]}
    assert "/lab/openalgo/api/v1/placeorder" in page.text


def _check_envelope(label: str, status: int, content_type: str, body: bytes) -> None:
    assert status < 500, f"{label}: {status} {body[:300]!r}"
    if not content_type.startswith("application/json"):
        # Only the CSV and text downloads of /instruments and /ticker are not JSON.
        assert status == 200 and content_type.startswith(("text/csv", "text/plain")), label
        return
    reply = json.loads(body)
    assert isinstance(reply, dict) and reply.get("status") in ("success", "error"), label
    if reply["status"] == "error":
        assert isinstance(reply.get("message"), str), f"{label}: {reply}"


@pytest.mark.slow
def test_fuzz_with_schemathesis(server: LiveServer) -> None:
    """Generated requests for every route, with the valid key put in wherever one is sent.

    The key goes into the body too: a generated `apikey` field would otherwise win over
    the header and every request would stop at the 403, testing nothing past the gate.
    """
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings

    schema = schemathesis.openapi.from_url(f"{server.root}openalgo/openapi.json")
    base_url = f"{server.root}openalgo/api/v1"
    deadline = time.monotonic() + FUZZ_BUDGET_SECONDS
    seen: dict[str, int] = {}
    statuses: dict[int, int] = {}

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(ACTIONS)

    def fuzzer(operation: Any) -> Callable[[], None]:
        """One bounded Hypothesis run for one route (a function so `label` is its own)."""
        label = f"{operation.method.upper()} {operation.path}"

        @settings(
            max_examples=FUZZ_EXAMPLES_PER_ROUTE,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            if isinstance(case.body, dict):
                case.body["apikey"] = server.key
            response = case.call(base_url=base_url, headers={"X-API-KEY": server.key}, timeout=20)
            headers = {name.lower(): value for name, value in response.headers.items()}
            content_type = headers.get("content-type", "")
            if isinstance(content_type, list):  # schemathesis keeps every value of a header
                content_type = content_type[0] if content_type else ""
            _check_envelope(label, response.status_code, content_type, response.content)
            seen[label] = seen.get(label, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        return fuzz

    for operation in operations:
        if time.monotonic() > deadline:
            pytest.fail(f"fuzzing took over {FUZZ_BUDGET_SECONDS} s; left {operation.path}")
        fuzzer(operation)()
        # Generated requests may switch the account to live or trip the kill switch; put it
        # back so later routes are fuzzed past those account-wide refusals.
        for action, body in (
            ("analyzer/toggle", {"mode": True}),
            ("killswitch", {"enabled": False}),
        ):
            httpx.post(f"{base_url}/{action}", json={"apikey": server.key, **body}, timeout=20)
    assert len(seen) == len(operations)
    assert sum(seen.values()) <= FUZZ_EXAMPLES_PER_ROUTE * len(operations) * 2
    # The injected key got past the gate: some requests succeeded, few were refused by it.
    assert statuses.get(200, 0) >= len(operations), statuses
    assert statuses.get(403, 0) < sum(statuses.values()) // 2, statuses
    print("fuzz status codes:", dict(sorted(statuses.items())), "requests:", sum(seen.values()))
