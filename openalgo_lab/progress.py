"""Progress bars for long work: demo seeding, master-contract and history-file loads.

Seeding a week of paper trades or reading a large master takes seconds, and a silent pause
looks like a hang. Bars come from `tqdm.auto`, which draws an ipywidgets bar inside a notebook
kernel and a text bar on stderr in a terminal, so stdout stays clean for scripts
(`KEY=$(openalgo-lab apikey create)`, `openalgo-lab demo | tee`).

Every caller takes `progress: bool | None`:

* `True` always shows the bar, `False` never does;
* `None` (the default) decides for you: shown in a notebook kernel, or when stderr is a
  terminal; hidden when stderr is a pipe or a file, so logs and CI output get no `\\r` noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NoReturn, TypeVar

if TYPE_CHECKING:
    from tqdm.std import tqdm as Bar

_T = TypeVar("_T")


def progress_bar(
    *,
    total: int | None,
    desc: str,
    unit: str,
    enabled: bool | None = None,
) -> Bar[NoReturn]:
    """A bar to `update()` by hand; use it as a context manager so it always closes."""
    return _tqdm(None, total=total, desc=desc, unit=unit, enabled=enabled)


def track(
    items: Iterable[_T],
    *,
    desc: str,
    unit: str,
    total: int | None = None,
    enabled: bool | None = None,
) -> Iterator[_T]:
    """Yield `items` while a bar counts them (total: `len(items)` when it has one). The bar
    closes even if the caller stops early or an item raises."""
    bar = _tqdm(items, total=total, desc=desc, unit=unit, enabled=enabled)
    try:
        yield from bar
    finally:
        bar.close()


def _tqdm(
    items: Iterable[_T] | None,
    *,
    total: int | None,
    desc: str,
    unit: str,
    enabled: bool | None,
) -> Bar[_T]:
    """`tqdm.auto` is imported here, not at module import: it picks the notebook or the text
    flavour from what is loaded at that moment (both subclass `tqdm.std.tqdm`), and the
    server process never needs it. tqdm's own `disable=None` hides the text bar when stderr
    is not a terminal and keeps the notebook bar: exactly our "auto"."""
    from tqdm.auto import tqdm

    disable = None if enabled is None else not enabled
    if items is None:
        return tqdm(total=total, desc=desc, unit=unit, disable=disable)  # type: ignore[return-value]
    return tqdm(items, total=total, desc=desc, unit=unit, disable=disable)
