"""Datasets behind one image contract.

Vocabulary (one name per idea, used across ganbench):

* **dataset** -- a name in :data:`ganbench.registry.datasets` (``mnist``,
  ``folder:PATH``); its *loader* ``open(split, arg) -> DatasetSplit`` is registered with
  :func:`register_dataset`.
* :class:`DatasetSplit` -- the images of one split of a dataset at native size, uint8
  (C, H, W), with labels where the dataset has them (:class:`InMemorySplit`: one tensor;
  :class:`~ganbench.data.builtin.ImageFileSplit`: files read on demand;
  :class:`~ganbench.translation.PairedSplit`: targets plus source images). Opened by name
  with :func:`open_split`.
* :class:`TrainingData` -- the training pipeline over a split: float images in [-1, 1]
  at the model's resolution, seeded batches addressed by step (:func:`training_data`).
* :func:`load_images` -- the evaluation view of a split: uint8 (N, C, H, W) plus labels.
* :class:`~ganbench.sources.ImageSource` -- anything the evaluator reads images from
  (a folder, an array file, a dataset split, a generator), in the 3-channel contract of
  :mod:`ganbench.images`; not part of this package.
* *source images* -- in paired datasets and translation models only: the images a model
  maps to the targets (pix2pix's input).

Modules: :mod:`~ganbench.data.contract` (the split contract, registration, names),
:mod:`~ganbench.data.files` (the one reader of array and image files),
:mod:`~ganbench.data.builtin` (the built-in datasets), :mod:`~ganbench.data.load` (the
evaluation view), :mod:`~ganbench.data.pipeline` (the training view). Conversions between
uint8, float, channels and sizes live in :mod:`ganbench.images`.

=====================  ===================================================================
name                   source
=====================  ===================================================================
``digits``             scikit-learn's bundled 8x8 digits (1,797 images; no download)
``mnist``              torchvision layout under ``$GANBENCH_DATA_DIR`` (``MNIST/raw/...``)
``fashion-mnist``      torchvision layout under ``$GANBENCH_DATA_DIR`` (``FashionMNIST/raw``)
``cifar10``            torchvision layout (``cifar-10-batches-py``)
``celeba``             torchvision layout (``celeba/img_align_celeba`` + list files),
                       centre-cropped to 178 x 178 (the DCGAN/PGGAN practice)
``folder:PATH``        image files under PATH (``PATH/train`` and ``PATH/test`` when they
                       exist, else every image for both splits); labels from class
                       sub-folders when every image sits in one
``npz:PATH``           arrays ``x_train``/``y_train``/``x_test``/``y_test``, or
                       ``images``/``labels`` (both splits), ...: the rule of
                       :func:`read_array_file`, which also reads ``-i``/``-r`` files
``mnist-edges``, ...   paired source -> target sets derived from MNIST for translation and
                       restoration models (:mod:`ganbench.translation`); the targets are
                       the images, the sources reach ``Batch.extra["source"]``
=====================  ===================================================================

Downloads (``mnist``, ``fashion-mnist``, ``cifar10``, ``celeba``) happen only when the
files are missing and ``GANBENCH_OFFLINE`` is not set; otherwise a one-line error names
the files expected and where to put them.

Third-party datasets register a loader with the same signature, through
:func:`register_dataset` or the ``ganbench.datasets`` entry-point group.
"""
from __future__ import annotations

from ganbench.data.contract import (SPLITS, DatasetSplit, InMemorySplit, dataset_info, open_split, parse_name,
                                    register_dataset)
from ganbench.data.files import IMAGE_EXTENSIONS, image_files, read_array_file, read_image
from ganbench.data.load import load_images
from ganbench.data.pipeline import TrainingData, training_data

__all__ = ["SPLITS", "DatasetSplit", "InMemorySplit", "dataset_info", "open_split", "parse_name",
           "register_dataset", "IMAGE_EXTENSIONS", "image_files", "read_array_file", "read_image",
           "load_images", "TrainingData", "training_data"]
