"""OpenAlgo Lab as a Jupyter server extension (enabled by `pip install` through the shipped
`jupyter_server_config.d/openalgo_lab.json`).

The extension module is `openalgo_lab.server_ext` rather than the top-level package so that
importing `openalgo_lab` in a kernel never pulls in jupyter_server.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from openalgo_lab.server_ext.app import OpenAlgoLabApp

    return [{"module": "openalgo_lab.server_ext", "app": OpenAlgoLabApp}]
