"""The ``ganbench`` command line. Commands live in their own modules and load lazily,
so ``ganbench --help`` is instant and a broken plug-in cannot break every command."""
from __future__ import annotations

import contextlib
import importlib
import sys
import warnings

import click

from ganbench import __version__
from ganbench.errors import GanbenchError
from ganbench.registry import PluginWarning

USER_ERROR = 2  # exit status of every user or usage error (click's usage errors included)

# command name -> ("module:attribute" of a click command, one-line help for the listing)
COMMANDS = {
    "eval": ("ganbench.cli.eval_cmd:eval_cmd", "Evaluate images or a generator (FID, IS, KID, PR, PPL, ...)."),
    "compare": ("ganbench.cli.compare_cmd:compare_cmd", "Are two models distinguishable? Differences with intervals."),
    "selfcheck": ("ganbench.cli.selfcheck_cmd:selfcheck_cmd",
                  "Check that the numbers do not move with the batch size (or device)."),
    "sample": ("ganbench.cli.sample_cmd:sample_cmd", "Draw the samples eval scores: grid, PNGs, .npz, interpolation."),
    "study": ("ganbench.cli.study_cmd:study_cmd", "Budgeted search over models, draws and seeds; reports."),
    "train": ("ganbench.cli.train_cmd:train_cmd", "Train a registered model on a dataset."),
    "models": ("ganbench.cli.models_cmd:models_cmd", "List registered models, or show one."),
    "datasets": ("ganbench.cli.models_cmd:datasets_cmd", "List the datasets."),
    "metrics": ("ganbench.cli.eval_cmd:metrics_cmd", "List the metrics."),
    "extractors": ("ganbench.cli.eval_cmd:extractors_cmd", "List the feature extractors."),
    "leaderboard": ("ganbench.cli.leaderboard_cmd:leaderboard_cmd", "Render leaderboards from the results store."),
    "results": ("ganbench.cli.leaderboard_cmd:results_cmd", "List raw result rows."),
    "plot": ("ganbench.cli.leaderboard_cmd:plot_cmd", "Plot training curves and precision/recall."),
    "register": ("ganbench.cli.register_cmd:register_cmd", "Register a third-party generator."),
    "unregister": ("ganbench.cli.register_cmd:unregister_cmd", "Remove a registered third-party generator."),
}


@contextlib.contextmanager
def plugin_warnings_on_stderr():
    """Show each :class:`PluginWarning` once, as one ``warning: ...`` line on stderr."""
    with warnings.catch_warnings():
        show = warnings.showwarning

        def one_line(message, category, *args, **kwargs):
            if issubclass(category, PluginWarning):
                click.echo(f"warning: {message}", err=True)
            else:
                show(message, category, *args, **kwargs)

        warnings.showwarning = one_line
        warnings.simplefilter("default", PluginWarning)
        yield


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx, formatter):  # no imports just to print help
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx):
        with plugin_warnings_on_stderr():
            try:
                return super().invoke(ctx)
            except GanbenchError as exc:
                click.echo(f"Error: {exc}", err=True)
                ctx.exit(USER_ERROR)
            except click.ClickException as exc:  # a command's own refusal; click would exit 1
                exc.exit_code = USER_ERROR
                raise


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
