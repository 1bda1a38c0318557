"""``ganbench register`` and ``ganbench unregister``: third-party generators by name."""
from __future__ import annotations

import click

from ganbench.cli.options import device_option


@click.command("register")
@click.argument("name")
@click.option("--torchscript", type=click.Path(dir_okay=False), default=None,
              help="A TorchScript file (torch.jit.save of a scripted or traced generator).")
@click.option("--onnx", type=click.Path(dir_okay=False), default=None,
              help="An ONNX file, run with onnxruntime (pip install 'ganbench[onnx]').")
@click.option("--factory", default=None, metavar="MODULE:FUNCTION",
              help="A function returning the generator nn.Module (imported now and at every load).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Weights for --factory: .safetensors, or a state-dict .pth (read with weights_only=True).")
@click.option("--weights-key", default=None, help="Entry of the weights file holding the generator (e.g. g_ema).")
@click.option("--z-dim", type=click.IntRange(min=1), required=True, help="Length of the latent vector z.")
@click.option("--z-dist", type=click.Choice(["normal", "uniform"]), default="normal", show_default=True,
              help="Latent distribution: N(0, I) or U(-1, 1).")
@click.option("--num-classes", type=click.IntRange(min=0), default=0, show_default=True,
              help="Classes of a class-conditional generator (called as G(z, labels)); 0: unconditional.")
@click.option("--output-range", type=click.Choice(["-1,1", "0,1", "0,255"]), default="-1,1", show_default=True,
              help="Value range of the generated images.")
@click.option("--channels", type=click.Choice(["1", "3"]), default="3", show_default=True,
              help="Image channels the generator produces.")
@click.option("--image-size", type=click.IntRange(min=1), default=None,
              help="Output height = width (checked; default: whatever the generator produces).")
@click.option("--dataset", default=None, help="The dataset it was trained on (`ganbench datasets` lists them).")
@click.option("--trust-pickle", is_flag=True,
              help="Allow full unpickling of this file (can run arbitrary code): only for files you trust.")
@click.option("--force", is_flag=True, help="Replace an existing registration of NAME.")
@device_option
def register_cmd(name, torchscript, onnx, factory, weights, weights_key, z_dim, z_dist, num_classes,
                 output_range, channels, image_size, dataset, trust_pickle, force, device):
    """Register a third-party generator as NAME, after checking it on a few latents.

    NAME can then be evaluated like a built-in model (`ganbench eval -i NAME ...`);
    `ganbench models` lists it under Registered generators (third-party checkpoints).
    The file's sha256 is recorded and checked at every load.

    \b
    Registrations are kept in $GANBENCH_HOME/registered-generators.json
    (default home: the user data folder, ~/.local/share/ganbench on Linux).

    \b
    Examples:
      ganbench register sngan-cifar --torchscript G.pt --z-dim 128 --image-size 32 --dataset cifar10
      ganbench register dcgan-onnx --onnx G.onnx --z-dim 100 --channels 1 --dataset mnist
      ganbench register biggan --factory mypkg.nets:Generator --weights G.safetensors \\
          --z-dim 120 --num-classes 10 --dataset cifar10
      ganbench eval -m fid -i sngan-cifar -r cifar10:train -n 50000
    """
    from ganbench.api import register_checkpoint
    from ganbench.evaluation import default_device
    from ganbench.thirdparty import describe, registry_path

    row = register_checkpoint(
        name, torchscript=torchscript, onnx=onnx, factory=factory, weights=weights, weights_key=weights_key,
        z_dim=z_dim, z_dist=z_dist, num_classes=num_classes, output_range=output_range,
        channels=int(channels), image_size=image_size, dataset=dataset, trust_pickle=trust_pickle,
        overwrite=force, device=device or default_device())
    click.echo(f"Registered {name!r} ({row['format']}, {describe(row)}, sha256 {row['checkpoint_sha256'][:12]}) "
               f"in {registry_path()}")
    if row["trust_pickle"]:
        click.echo("warning: this registration unpickles its file at every load (--trust-pickle)", err=True)
    reference = f"{dataset}:train" if dataset and ":" not in dataset else (dataset or "DATASET:train")
    click.echo(f"Evaluate it with: ganbench eval -m fid -i {name} -r {reference}")


@click.command("unregister")
@click.argument("name")
def unregister_cmd(name):
    """Remove the registered generator NAME (its checkpoint file is kept).

    \b
    Example:
      ganbench unregister sngan-cifar
    """
    from ganbench.api import unregister_checkpoint

    unregister_checkpoint(name)
    click.echo(f"Unregistered {name!r}")
