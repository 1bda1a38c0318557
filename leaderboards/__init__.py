"""Results store, leaderboards and their renderings.

    >>> from ganbench.leaderboards import load, build_leaderboards, render_leaderboards
    >>> df = load(dataset="mnist")                      # every stored number, with provenance
    >>> boards = build_leaderboards(df, ["fid", "kid"])  # one table per comparable protocol
    >>> print(render_leaderboards(boards, "md"))

The evaluation runner appends rows with ``open_store().append(rows)`` (schema:
:data:`~ganbench.leaderboards.store.COLUMNS`). Importing this package stays light: pandas
and matplotlib are loaded only by the readers, renderers and plots.
"""
from __future__ import annotations

import importlib
from typing import Any

from ganbench.leaderboards.store import (COLUMNS, ResultsStore, load, make_protocol, new_run_id, open_store,
                                         utc_now)

_LAZY = {
    "build_leaderboards": "board", "aggregate": "board", "Leaderboard": "board", "MetricColumn": "board",
    "render_leaderboards": "render", "render_results": "render", "write_output": "render", "FORMATS": "render",
    "plot_curve": "plots", "plot_pr": "plots", "save_figure": "plots",
}

__all__ = ["COLUMNS", "ResultsStore", "load", "make_protocol", "new_run_id", "open_store", "utc_now", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"ganbench.leaderboards.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ganbench.leaderboards' has no attribute {name!r}")
