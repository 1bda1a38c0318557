"""``example-shapes``: 16 x 16 RGB images of a filled square (label 0) or disc (label 1)
of random colour, size and position; generated from a fixed seed, nothing to download."""
from __future__ import annotations

import torch

from ganbench.data import DatasetSplit, InMemorySplit, register_dataset

SIZE = 16
COUNTS = {"train": 512, "test": 256}


@register_dataset("example-shapes", description="Example plug-in: squares and discs, 16x16 RGB",
                  channels=3, num_classes=2, image_size=SIZE, source="generated")
def load_shapes(split: str, arg: str | None) -> DatasetSplit:
    gen = torch.Generator().manual_seed({"train": 0, "test": 1}[split])
    n = COUNTS[split]
    labels = torch.randint(0, 2, (n,), generator=gen)
    radius = torch.randint(3, 7, (n, 1, 1), generator=gen).float()
    centre = torch.randint(4, SIZE - 4, (n, 2, 1, 1), generator=gen).float()
    colour = torch.randint(64, 256, (n, 3, 1, 1), generator=gen)
    ys, xs = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    dy, dx = ys - centre[:, 0], xs - centre[:, 1]
    square = (dy.abs() <= radius) & (dx.abs() <= radius)
    disc = dy ** 2 + dx ** 2 <= radius ** 2
    mask = torch.where(labels.view(-1, 1, 1).bool(), disc, square)
    images = (mask.unsqueeze(1) * colour).to(torch.uint8)
    return InMemorySplit(f"example-shapes:{split}", images, labels, num_classes=2)
