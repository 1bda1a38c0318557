"""``ganbench compare``: are two models distinguishable on these metrics at this N?"""
from __future__ import annotations

import click

from ganbench.cli.options import batch_size_option, device_option, one_line_warnings, seed_option


@click.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--reference", "-r", default=None, help="Reference both are scored against (e.g. mnist:test).")
@click.option("--metric", "-m", "metrics", multiple=True, default=("fid",), show_default=True,
              help="Feature-based metric (repeatable): fid, kid, isc, pr, density-coverage, class-accuracy.")
@click.option("--num-samples", "-n", type=click.IntRange(min=1), default=None,
              help="Samples per input (generators: drawn from the same latents; default 10,000).")
@click.option("--num-reference", type=click.IntRange(min=1), default=None, help="Use the first N reference images.")
@click.option("--extractor", default="inception-v3-compat", show_default=True, help="Feature extractor.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weights file of the extractor.")
@click.option("--option", "-o", "metric_options", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Metric option, e.g. kid.subset_size=100.")
@click.option("--bootstrap", "replicates", type=int, default=None, metavar="B",
              help="Paired-bootstrap replicates  [default: 100]")
@click.option("--ci", "level", type=float, default=None, metavar="LEVEL", help="Interval level  [default: 0.95]")
@batch_size_option
@device_option
@seed_option
@click.option("--no-cache", is_flag=True, help="Recompute features even if cached.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def compare_cmd(a, b, reference, metrics, num_samples, num_reference, extractor, weights, metric_options,
                replicates, level, batch_size, device, seed, no_cache, quiet):
    """Compare A and B (checkpoints, registered generators, folders, arrays) against the same
    reference features: each metric's difference A - B with a paired-bootstrap interval
    and p-value, and whether the two are distinguishable at this N.

    \b
    Examples:
      ganbench compare runs/dcgan runs/wgan-gp -r mnist:test -m fid -m kid --extractor lenet-mnist -n 5000
      ganbench compare a.npz b.npz -r cifar10:test -m fid --bootstrap 200 --ci 0.9
    """
    from ganbench.cli.eval_cmd import _interval_settings, _metric_options
    from ganbench.comparison import compare
    from ganbench.evaluation import default_device

    with one_line_warnings():
        result = compare(a, b, reference, metrics, extractor=extractor, weights=weights,
                         num_samples=num_samples, num_reference=num_reference,
                         options=_metric_options(metric_options), batch_size=batch_size,
                         device=device or default_device(), seed=seed, use_cache=not no_cache,
                         progress=not quiet, **_interval_settings(replicates, level))
    click.echo(result.summary())
