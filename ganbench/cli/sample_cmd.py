"""``ganbench sample``: look at the samples an evaluation scores."""
from __future__ import annotations

import click

from ganbench.cli.options import batch_size_option, device_option, force_option, one_line_warnings, seed_option


def parse_classes(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """Click callback: ``"0,3,7"`` -> ``[0, 3, 7]``."""
    if value is None:
        return None
    try:
        return [int(item) for item in value.split(",") if item.strip()] or None
    except ValueError:
        raise click.BadParameter(f"expected class numbers separated by commas, e.g. 0,3,7; got {value!r}") from None


@click.command("sample")
@click.argument("input_", metavar="INPUT")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="A grid .png: a row per class for class-conditional models, else a square "
                   "(with --interpolate: a path per row, or an animated .gif).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="A folder for numbered PNG files.")
@click.option("--npz", type=click.Path(dir_okay=False), default=None,
              help="An .npz of uint8 images (N, 3, H, W) and labels, as `ganbench eval -i` reads it.")
@click.option("--num-samples", "-n", type=click.IntRange(min=1), default=None,
              help="Images (default 64; a class-conditional grid: 8 per class), or paths with --interpolate "
                   "(default 8).")
@click.option("--classes", callback=parse_classes, default=None, metavar="0,3,7",
              help="Rows of a class-conditional grid (default: every class).")
@click.option("--truncation", type=float, default=None, metavar="PSI",
              help="Truncation trick: StyleGAN's psi in W (1: off), BigGAN's threshold of z (0: one image per "
                   "class). The samples are then not the ones eval scores.")
@click.option("--interpolate", type=click.IntRange(min=2), default=None, metavar="K",
              help="K steps from sample 2r to sample 2r+1 (slerp for normal latents, lerp for uniform).")
@click.option("--source", default=None,
              help="Images an image-conditioned generator translates (as for `ganbench eval`).")
@seed_option
@batch_size_option
@device_option
@force_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sample_cmd(input_, grid, out, npz, num_samples, classes, truncation, interpolate, source, seed, batch_size,
               device, force, quiet):
    """Draw the samples `ganbench eval` scores for a seed (same latents, order and labels).

    INPUT: a checkpoint, a training run folder or a registered generator.

    \b
    Examples:
      ganbench sample runs/dcgan --grid dcgan.png
      ganbench sample runs/biggan --grid rows.png --classes 0,3,7 --truncation 0.5
      ganbench sample runs/dcgan -n 10000 --npz fake.npz   # then: ganbench eval -i fake.npz ...
      ganbench sample runs/stylegan --interpolate 16 -n 4 --grid walk.gif
      ganbench sample runs/pix2pix --source mnist-edges:test --out translations/
    """
    from ganbench.sampling import sample

    with one_line_warnings():
        written = sample(input_, grid=grid, out=out, npz=npz, num_samples=num_samples, seed=seed,
                         truncation=truncation, interpolate=interpolate, classes=classes, source=source,
                         device=device, batch_size=batch_size, force=force, progress=not quiet)
    for path in written:
        click.echo(f"wrote {path}")
