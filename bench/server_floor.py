"""A bare Tornado JSON handler at `{base_url}bench/floor`, loaded into the benchmark's server.

It is the floor for `bench_server`: the same process, event loop, HTTP stack and loopback
client as the OpenAlgo routes, but no auth, no parsing beyond the body and no engine, so
placeorder's throughput divided by this one is the share the product keeps of what the server
can do at all. It lives under bench/ (imported as `server_floor` with bench/ on PYTHONPATH)
so that measuring never touches product code:

    jupyter server --ServerApp.jpserver_extensions='{"server_floor": True}'
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join
from tornado import web


class FloorHandler(web.RequestHandler):
    """POST a JSON body, get a small JSON back; skips Jupyter's auth and XSRF on purpose."""

    def check_xsrf_cookie(self) -> None:
        """Jupyter turns XSRF on for the whole app; the floor must not pay for it."""

    def post(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(b'{"status": "success", "orderid": "floor"}')


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "server_floor"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = serverapp.web_app.settings.get("base_url", "/")
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, "bench/floor"), FloorHandler)])
