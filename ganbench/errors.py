"""User-facing errors.

Every problem caused by user input (a bad path, a corrupt file, an unknown name, a
generator that emits NaNs, ...) raises a :class:`GanbenchError` whose message fits on
one line. The CLI prints it as ``Error: <message>`` and exits non-zero; library users
catch it like any exception. ``assert`` is reserved for internal invariants.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Iterable


class GanbenchError(Exception):
    """An error caused by user input or the environment, reported in one line."""


class UnknownNameError(GanbenchError, KeyError):
    """A name that is not in a registry (model, metric, dataset, extractor...)."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        self.kind, self.name, self.known = kind, name, known
        listing = ", ".join(known) if known else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}.{did_you_mean(name, known)} Known {kind}s: {listing}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``known`` to ``name``, or "" when none is close."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    if not close:  # a misspelt prefix of a long name ("incepton" -> "inception-v3-compat")
        heads = {k[:len(name) + 1]: k for k in known}
        close = [heads[h] for h in difflib.get_close_matches(name, list(heads), n=1, cutoff=0.75)]
    return f" Did you mean {close[0]!r}?" if close else ""


class InputError(GanbenchError, ValueError):
    """Images, arrays or generators that cannot be evaluated as given."""


class MissingFileError(GanbenchError, FileNotFoundError):
    """A weights or data file that cannot be found or downloaded."""

    def __str__(self) -> str:
        return self.args[0]


def write_problem(path: str | os.PathLike, exc: BaseException | None = None) -> str | None:
    """Why a file cannot be written at ``path``, in a few words for a one-line message:
    the path is a folder or read-only, its folder is a file or read-only, else ``exc``'s
    reason (a write that failed); None when no exception is given and nothing is in the way."""
    path = Path(path).absolute()
    if path.is_dir():
        return f"{path} is a folder"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is read-only"
    folder = next(p for p in path.parents if p.exists())  # missing folders below it would be created
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK):
        return f"folder {folder} is read-only"
    if exc is None:
        return None
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
