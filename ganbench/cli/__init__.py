"""The ``ganbench`` command line. Commands live in their own modules and load lazily,
so ``ganbench --help`` is instant and a broken plug-in cannot break every command."""
from __future__ import annotations

import importlib
import sys

import click

from ganbench import __version__
from ganbench.errors import GanbenchError

# command name -> "module:attribute" of a click command
COMMANDS = {
    "eval": "ganbench.cli.eval_cmd:eval_cmd",
    "train": "ganbench.cli.train_cmd:train_cmd",
    "models": "ganbench.cli.models_cmd:models_cmd",
    "datasets": "ganbench.cli.models_cmd:datasets_cmd",
    "metrics": "ganbench.cli.eval_cmd:metrics_cmd",
    "extractors": "ganbench.cli.eval_cmd:extractors_cmd",
    "leaderboard": "ganbench.cli.leaderboard_cmd:leaderboard_cmd",
    "results": "ganbench.cli.leaderboard_cmd:results_cmd",
    "plot": "ganbench.cli.leaderboard_cmd:plot_cmd",
    "register": "ganbench.cli.register_cmd:register_cmd",
    "unregister": "ganbench.cli.register_cmd:unregister_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        ref = COMMANDS.get(name)
        if ref is None:
            return None
        module_name, attr = ref.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GanbenchError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganbench")
def main():
    """Fair, reproducible benchmarking of GANs.

    \b
    Examples:
      ganbench train dcgan --dataset digits --steps 300 --out runs/dcgan
      ganbench eval --metric fid --metric isc --input runs/dcgan/checkpoint.safetensors --reference digits
      ganbench leaderboard --dataset mnist --format md
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
