"""``ganbench selfcheck``: the same number at another batch size (and, on CUDA, on the CPU)?"""
from __future__ import annotations

import sys

import click

from ganbench.cli.options import device_option, one_line_warnings, seed_option


@click.command("selfcheck")
@click.option("--input", "-i", "input_", required=True, help="What to evaluate (any `ganbench eval` input).")
@click.option("--reference", "-r", default=None, help="Reference (e.g. mnist:test).")
@click.option("--metric", "-m", "metrics", multiple=True, default=("fid",), show_default=True,
              help="Metric (repeatable).")
@click.option("--extractor", default="inception-v3-compat", show_default=True, help="Feature extractor.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weights file of the extractor.")
@click.option("--num-samples", "-n", type=click.IntRange(min=2), default=500, show_default=True,
              help="Samples per run (and reference images).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=None,
              help="Largest relative change accepted  [default: 1e-3]")
@device_option
@seed_option
def selfcheck_cmd(input_, reference, metrics, extractor, weights, num_samples, tolerance, device, seed):
    """Evaluate a small sample at two batch sizes (and on CUDA also on the CPU) and fail
    (exit 1) if any metric moves by more than the tolerance.

    \b
    Example:
      ganbench selfcheck -i runs/dcgan -r mnist:test -m fid -m kid --extractor lenet-mnist
    """
    from ganbench.evaluation import default_device
    from ganbench.selfcheck import DEFAULT_TOLERANCE, selfcheck

    with one_line_warnings():
        result = selfcheck(input_, reference, metrics, num_samples=num_samples, num_reference=num_samples,
                           device=device or default_device(), extractor=extractor, weights=weights, seed=seed,
                           tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)
    click.echo(result.summary())
    if result.failed:
        click.echo(f"selfcheck FAILED: {len(result.failed)} number(s) moved with the way they were computed; "
                   f"do not report them before finding out why", err=True)
        sys.exit(1)
    click.echo("selfcheck passed: the numbers do not depend on the batch size"
               + (" or the device" if (device or default_device()).startswith("cuda") else ""))
