"""An OpenAPI description of the OpenAlgo routes, served as JSON and as a plain HTML page.

The document is built from the action registry at request time rather than kept as a file,
so a newly registered action shows up (as a plain object body) without anyone editing a
spec, and the summaries can never drift from the actions' docstrings. Field details come
from one small table taken from the OpenAlgo reference (§2) for the actions callers use
most; the rest are described as "an object with `apikey`", which is true if incomplete.

Both routes are readable without an API key: the document holds no account data, and a
caller needs it exactly when it does not yet know how to authenticate. The HTML page is
rendered on the server with no script and no external asset, so it works offline and
under Jupyter's content-security policy.
"""

from __future__ import annotations

import html
import json
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from openalgo_lab.domain.enums import Exchange, Interval
from openalgo_lab.engine.actions import ACTIONS, ActionSpec

JSON = dict[str, Any]
OPENAPI_VERSION = "3.0.3"
GET_ACTIONS = ("instruments", "ticker")  # served by GET handlers, not POST /<action>
ERROR_CODES = {
    "400": "Invalid request (validation error, bad state)",
    "401": "API key missing",
    "403": "API key invalid, or not allowed for this key's scope",
    "404": "Not found (order, symbol, endpoint)",
    "413": "Request body too large",
    "429": "Rate limit exceeded",
    "500": "Internal or broker error",
    "503": "The engine is not running",
}
# Tag per action module: the docs page groups routes by it.
MODULE_TAGS = {
    "orders": "orders",
    "options_orders": "orders",
    "books": "account",
    "market": "market",
    "symbols": "symbols",
    "options": "options",
    "calendar": "calendar",
    "analytics": "analytics",
    "meta": "meta",
}
TAG_ORDER = ("orders", "account", "market", "symbols", "options", "calendar", "analytics", "meta")

_NUMBER: JSON = {
    "oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}]
}


def _num(description: str, example: object) -> JSON:
    return {**_NUMBER, "description": description, "example": example}


def _str(description: str, example: object, **extra: Any) -> JSON:
    return {"type": "string", "description": description, "example": example, **extra}


def _enum(description: str, values: list[str], example: str) -> JSON:
    return _str(description, example, enum=values)


_LEG: JSON = {
    "type": "object",
    "description": "One order of the list",
    "properties": {
        "exchange": {"type": "string"},
        "symbol": {"type": "string"},
        "action": {"type": "string"},
        "quantity": _NUMBER,
    },
    "example": {"exchange": "NSE", "symbol": "SBIN", "action": "BUY", "quantity": 1},
}
_SYMBOL_REF: JSON = {
    "type": "object",
    "properties": {"symbol": {"type": "string"}, "exchange": {"type": "string"}},
    "required": ["symbol", "exchange"],
}
_OPTION_LEG: JSON = {
    "type": "object",
    "properties": {
        "offset": {"type": "string"},
        "option_type": {"type": "string"},
        "action": {"type": "string"},
        "quantity": _NUMBER,
    },
    "required": ["offset", "option_type", "action", "quantity"],
}

# The one field table (reference §2): every field any documented action takes.
FIELDS: dict[str, JSON] = {
    "apikey": _str("OpenAlgo API key (also accepted as ?apikey= or X-API-KEY)", "<your key>"),
    "strategy": _str("Free-text tag used in logs and the per-strategy position book", "demo"),
    "exchange": _enum("Exchange", [e.value for e in Exchange], "NSE"),
    "symbol": _str("OpenAlgo symbol", "SBIN"),
    "action": _enum("Side", ["BUY", "SELL"], "BUY"),
    "quantity": _num("Quantity (> 0; integer unless CRYPTO)", 1),
    "pricetype": _enum("Price type", ["MARKET", "LIMIT", "SL", "SL-M"], "MARKET"),
    "product": _enum("Product", ["MIS", "NRML", "CNC"], "MIS"),
    "price": _num("Limit price (0 for MARKET)", 0),
    "trigger_price": _num("Trigger price for SL / SL-M", 0),
    "disclosed_quantity": _num("Disclosed quantity", 0),
    "position_size": _num("Signed target net position", 0),
    "orderid": _str("Order id returned by placeorder", "1"),
    "splitsize": _num("Quantity of each child order", 1),
    "orders": {"type": "array", "items": _LEG, "description": "Orders of the basket"},
    "query": _str("Search text, e.g. 'NIFTY 26000 CE'", "SBIN"),
    "interval": _enum("Candle interval", [i.value for i in Interval], "D"),
    "start_date": _str("First day, YYYY-MM-DD", "2025-01-01"),
    "end_date": _str("Last day, YYYY-MM-DD", "2025-01-31"),
    "instrumenttype": _enum("Instrument type", ["futures", "options"], "futures"),
    "underlying": _str("Underlying symbol", "NIFTY"),
    "expiry_date": _str("Expiry, DDMMMYY", "25AUG26"),
    "strike_int": _num("Strike step (optional; the master contract's strikes otherwise)", 50),
    "offset": _str("ATM, ITM1..ITM50 or OTM1..OTM50", "ATM"),
    "option_type": _enum("Option type", ["CE", "PE"], "CE"),
    "strike_count": {"type": "integer", "minimum": 1, "maximum": 100, "example": 5},
    "with_greeks": {"type": "boolean", "description": "Add greeks to the chain", "example": False},
    "interest_rate": _num("Interest rate in percent", 0),
    "legs": {"type": "array", "items": _OPTION_LEG, "minItems": 1, "maxItems": 20},
    "symbols": {"type": "array", "items": _SYMBOL_REF, "minItems": 1},
    "positions": {"type": "array", "items": _LEG, "minItems": 1, "maxItems": 50},
    "year": {"type": "integer", "minimum": 2020, "maximum": 2050, "example": 2025},
    "date": _str("Day, YYYY-MM-DD", "2025-01-01"),
    "mode": {"type": "boolean", "description": "true: analyze (sandbox), false: live"},
}

_ORDER = "strategy exchange symbol action quantity"
_ORDER_OPT = "pricetype product price trigger_price disclosed_quantity"
_OPTION = "strategy underlying exchange offset option_type action quantity"
# action: (required fields, optional fields), apikey implied; from reference §2.
ACTION_FIELDS: dict[str, tuple[str, str]] = {
    "placeorder": (_ORDER, _ORDER_OPT),
    "placesmartorder": (_ORDER + " position_size", _ORDER_OPT),
    "modifyorder": (
        _ORDER + " orderid product pricetype price",
        "disclosed_quantity trigger_price",
    ),
    "cancelorder": ("orderid", "strategy"),
    "cancelallorder": ("", "strategy"),
    "closeposition": ("", "strategy"),
    "basketorder": ("orders", "strategy"),
    "splitorder": (_ORDER + " splitsize", _ORDER_OPT),
    "optionsorder": (_OPTION, "expiry_date strike_int splitsize " + _ORDER_OPT),
    "optionsmultiorder": ("strategy underlying exchange legs", "expiry_date strike_int"),
    "orderstatus": ("orderid", "strategy"),
    "openposition": ("symbol exchange product", "strategy"),
    "margin": ("positions", ""),
    "quotes": ("symbol exchange", ""),
    "multiquotes": ("symbols", ""),
    "depth": ("symbol exchange", ""),
    "history": ("symbol exchange interval start_date end_date", ""),
    "symbol": ("symbol exchange", ""),
    "search": ("query", "exchange"),
    "expiry": ("symbol exchange instrumenttype", ""),
    "optionsymbol": ("underlying exchange offset option_type", "expiry_date strike_int"),
    "optionchain": ("underlying exchange expiry_date", "strike_count with_greeks interest_rate"),
    "syntheticfuture": ("underlying exchange expiry_date", ""),
    "optiongreeks": ("symbol exchange", "interest_rate"),
    "multioptiongreeks": ("symbols", "interest_rate"),
    "market/holidays": ("", "year"),
    "market/timings": ("date", ""),
    "analyzer/toggle": ("mode", ""),
}


def api_prefix(base_path: str) -> str:
    """`{base_url}openalgo/api/v1` for a base_url given with or without slashes."""
    base = "/" + base_path.strip("/")
    return base.rstrip("/") + "/openalgo/api/v1"


def tag_of(spec: ActionSpec) -> str:
    module = spec.handler.__module__.rsplit(".", 1)[-1]
    return MODULE_TAGS.get(module, "meta")


def body_schema(name: str) -> JSON:
    """The request body of one action: apikey plus its fields from the table, if listed."""
    required, optional = ACTION_FIELDS.get(name, ("", ""))
    req = required.split()
    props = {field: FIELDS[field] for field in ["apikey", *req, *optional.split()]}
    return {"type": "object", "required": ["apikey", *req], "properties": props}


def _responses(ok: JSON | None = None) -> JSON:
    success = ok or {"application/json": {"schema": {"$ref": "#/components/schemas/Success"}}}
    out: JSON = {"200": {"description": "Success envelope", "content": success}}
    for code in ERROR_CODES:
        out[code] = {"$ref": f"#/components/responses/{code}"}
    return out


def _query(name: str, description: str, schema: JSON, required: bool = False) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _get_routes() -> JSON:
    """The two GET routes, which take their fields from the query string."""
    instruments: JSON = {
        "get": {
            "operationId": "instruments",
            "summary": ACTIONS["instruments"].summary if "instruments" in ACTIONS else "",
            "tags": ["symbols"],
            "parameters": [
                _query("exchange", "Only this exchange", FIELDS["exchange"]),
                _query("format", "json or csv", {"type": "string", "enum": ["json", "csv"]}),
            ],
            "responses": _responses(
                {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Success"}},
                    "text/csv": {"schema": {"type": "string"}},
                }
            ),
        }
    }
    ticker: JSON = {
        "get": {
            "operationId": "ticker",
            "summary": ACTIONS["ticker"].summary if "ticker" in ACTIONS else "",
            "tags": ["market"],
            "parameters": [
                {
                    "name": "symbol",
                    "in": "path",
                    "required": True,
                    "description": "EXCHANGE:SYMBOL",
                    "schema": {"type": "string", "pattern": "^[^/]+$", "example": "NSE:SBIN"},
                },
                _query("interval", "Candle interval", FIELDS["interval"]),
                _query("from", "First day, YYYY-MM-DD or epoch", {"type": "string"}),
                _query("to", "Last day, YYYY-MM-DD or epoch", {"type": "string"}),
                _query("format", "json or txt", {"type": "string", "enum": ["json", "txt"]}),
            ],
            "responses": _responses(
                {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Success"}},
                    "text/plain": {"schema": {"type": "string"}},
                }
            ),
        }
    }
    return {"/instruments": instruments, "/ticker/{symbol}": ticker}


def openapi_document(base_path: str) -> JSON:
    """OpenAPI 3.0 for every route under `{base_path}openalgo/api/v1`, from the registry."""
    paths: JSON = {}
    for name in sorted(ACTIONS):
        if name in GET_ACTIONS:
            continue
        spec = ACTIONS[name]
        paths[f"/{name}"] = {
            "post": {
                "operationId": name.replace("/", "_"),
                "summary": spec.summary,
                "description": (
                    f"Rate class: {spec.rate.value}. "
                    + ("Needs a trading-scoped key." if spec.trading else "Any key.")
                ),
                "tags": [tag_of(spec)],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body_schema(name)}},
                },
                "responses": _responses(),
            }
        }
    paths.update(_get_routes())
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "OpenAlgo Lab API",
            "version": "1",
            "description": "OpenAlgo-compatible REST API. Every answer is a JSON envelope "
            'with "status": "success" or "error".',
        },
        "servers": [{"url": api_prefix(base_path)}],
        "tags": [{"name": tag} for tag in TAG_ORDER],
        "security": [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
                "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "apikey"},
            },
            "schemas": {
                "Success": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string", "enum": ["success"]}},
                    "additionalProperties": True,
                },
                "Error": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {
                        "status": {"type": "string", "enum": ["error"]},
                        "message": {"type": "string"},
                    },
                    "additionalProperties": True,
                },
            },
            "responses": {
                code: {"description": text, "content": error_ref}
                for code, text in ERROR_CODES.items()
            },
        },
    }


# ---- the HTML page ----------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2.5rem}
section{margin:1.5rem 0}
code,pre{background:#f4f4f4;border-radius:3px}
pre{padding:.6rem;overflow-x:auto;white-space:pre-wrap}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;font-size:.9rem}
.m{font-weight:bold;color:#fff;background:#276;padding:0 .4rem;border-radius:3px}
"""


def _type_text(schema: JSON) -> str:
    if "oneOf" in schema:
        return "number | numeric string"
    kind = str(schema.get("type", "object"))
    if "enum" in schema:
        return kind + ": " + " | ".join(str(v) for v in schema["enum"])
    return kind


def _example_body(schema: JSON) -> JSON:
    props: JSON = schema.get("properties", {})
    return {
        name: prop.get("example", "")
        for name, prop in props.items()
        if name in schema.get("required", []) or name == "apikey"
    }


def _curl(origin: str, prefix: str, path: str, method: str, op: JSON) -> str:
    url = origin + prefix + path
    if method == "get":
        url = url.replace("{symbol}", "NSE:SBIN") + "?apikey=YOUR_KEY"
        return f"curl '{url}'"
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    body = _example_body(schema)
    body["apikey"] = "YOUR_KEY"
    return (
        f"curl -X POST '{url}' -H 'Content-Type: application/json' "
        f"-d '{json.dumps(body, separators=(',', ':'))}'"
    )


def _field_rows(op: JSON) -> list[tuple[str, str, bool, str]]:
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        required = set(schema.get("required", []))
        return [
            (name, _type_text(prop), name in required, str(prop.get("description", "")))
            for name, prop in schema.get("properties", {}).items()
        ]
    return [
        (
            p["name"],
            f"{p['in']}: {_type_text(p['schema'])}",
            bool(p.get("required")),
            str(p.get("description", "")),
        )
        for p in op.get("parameters", [])
    ]


def docs_html(document: JSON, origin: str) -> str:
    """The document as one self-contained page: per tag, each route with its fields and a curl.

    `origin` (the scheme and host the page was asked on) only makes the curl lines
    copy-pasteable; every value is escaped, since the Host header comes from the caller.
    """
    esc = html.escape
    prefix = document["servers"][0]["url"]
    spec_url = prefix.removesuffix("/api/v1") + "/openapi.json"
    by_tag: dict[str, list[str]] = {tag: [] for tag in TAG_ORDER}
    for path, item in document["paths"].items():
        for method, op in item.items():
            rows = "".join(
                f"<tr><td><code>{esc(n)}</code></td><td>{esc(t)}</td>"
                f"<td>{'yes' if r else ''}</td><td>{esc(d)}</td></tr>"
                for n, t, r, d in _field_rows(op)
            )
            by_tag.setdefault(op["tags"][0], []).append(
                f'<section id="{esc(op["operationId"])}">'
                f'<h3><span class="m">{method.upper()}</span> '
                f"<code>{esc(prefix + path)}</code></h3>"
                f"<p>{esc(op.get('summary', ''))}</p>"
                f"<p>{esc(op.get('description', ''))}</p>"
                "<table><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr>"
                f"{rows}</table>"
                f"<pre>{esc(_curl(origin, prefix, path, method, op))}</pre></section>"
            )
    body = "".join(
        f'<h2 id="tag-{esc(tag)}">{esc(tag)}</h2>' + "".join(sections)
        for tag, sections in by_tag.items()
        if sections
    )
    toc = " · ".join(f'<a href="#tag-{esc(t)}">{esc(t)}</a>' for t, s in by_tag.items() if s)
    info = document["info"]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(info['title'])}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{esc(info['title'])}</h1><p>{esc(info['description'])}</p>"
        "<p>Authenticate with <code>apikey</code> in the JSON body, the <code>apikey</code> "
        "query parameter or the <code>X-API-KEY</code> header. Machine-readable: "
        f'<a href="{esc(spec_url)}">openapi.json</a>.</p>'
        f"<p>{toc}</p>{body}</body></html>"
    )


class OpenAPIHandler(ExtensionHandlerMixin, JupyterHandler):
    """GET `{base_url}openalgo/openapi.json`: the document, for this server's base_url."""

    @allow_unauthenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(openapi_document(self.base_url)))


class DocsHandler(ExtensionHandlerMixin, JupyterHandler):
    """GET `{base_url}openalgo/docs`: the document as a readable page (no script, no CDN)."""

    @allow_unauthenticated
    def get(self) -> None:
        origin = f"{self.request.protocol}://{self.request.host}"
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(docs_html(openapi_document(self.base_url), origin))


def openapi_handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """Routes relative to the server's base_url (the ExtensionApp prefixes it)."""
    return [
        (r"/openalgo/openapi\.json", OpenAPIHandler),
        (r"/openalgo/docs/?", DocsHandler),
    ]
