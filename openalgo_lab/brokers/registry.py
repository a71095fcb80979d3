"""Broker discovery through entry points (`openalgo_lab.brokers` group).

A third-party package adds a broker by declaring, in its own pyproject.toml:

    [project.entry-points."openalgo_lab.brokers"]
    mybroker = "mypackage.broker:MyBroker"

No change to this project is needed; `available_brokers()` lists it and `load_broker` imports it.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from openalgo_lab.domain.errors import NotFoundError

GROUP = "openalgo_lab.brokers"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_brokers() -> list[str]:
    """Names of every installed broker adapter, sorted."""
    return sorted(_entry_points())


def load_broker(name: str) -> type:
    """The adapter class registered under `name`; `NotFoundError` names the installed ones."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise NotFoundError(f"Broker {name!r} is not installed (installed: {known})")
    loaded = eps[name].load()
    if not isinstance(loaded, type):
        raise TypeError(f"entry point {name!r} must name a class, got {loaded!r}")
    return loaded
