"""Click options shared by several commands, each defined once."""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import click


def check_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: refuse a device this machine cannot use before any work starts."""
    if value is not None:
        from ganbench.training import resolve_device  # the one device check

        resolve_device(value)
    return value


device_option = click.option(
    "--device", default=None, metavar="cpu|cuda[:N]|mps", callback=check_device,
    help="Where to run (default: cuda when available, else cpu).")
batch_size_option = click.option(
    "--batch-size", "-b", type=click.IntRange(min=1), default=64, show_default=True, help="Batch size.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
force_option = click.option("--force", is_flag=True, help="Overwrite an existing output file.")


def parse_assignments(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``("a=1", "b=x")`` -> ``{"a": "1", "b": "x"}`` with a one-line error on bad items."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=what)
        out[key.strip()] = value.strip()
    return out


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Print Python warnings raised inside as ``warning: <message>`` lines, like the errors."""
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"warning: {message}", err=True)
        yield
