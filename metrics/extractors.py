"""The built-in feature extractors (the built-in module of
``ganbench.registry.feature_extractors``).

Importing this module registers every built-in factory
``build(weights=None, device="cpu") -> FeatureExtractor``:

==========================  ===========================  ==================================
name                        provides                     module
==========================  ===========================  ==================================
``inception-v3-compat``     pool, logits, logits_biased, :mod:`ganbench.metrics.inception`
                            spatial
``vgg16``                   fc2, fc2_relu                :mod:`ganbench.metrics.vgg16`
``swav-resnet50``           pool                         :mod:`ganbench.metrics.swav`
``dinov2-vit-s14``, ...     pool (the CLS token)         :mod:`ganbench.metrics.dinov2`
``clip-vit-b32``, ...       pool (the image embedding)   :mod:`ganbench.metrics.clip`
``lenet-mnist``, ...        (see the module)             :mod:`ganbench.metrics.lenet`
==========================  ===========================  ==================================
"""
from __future__ import annotations

import importlib
import importlib.util

import ganbench.metrics.clip  # noqa: F401  (registers clip-vit-b32, -l14, -l14-336)
import ganbench.metrics.dinov2  # noqa: F401  (registers dinov2-vit-s14, -b14, -l14, -g14)
import ganbench.metrics.inception  # noqa: F401  (registers inception-v3-compat)
import ganbench.metrics.swav  # noqa: F401  (registers swav-resnet50)
import ganbench.metrics.vgg16  # noqa: F401  (registers vgg16)

# The LeNet extractors live in their own module, which may not exist in every checkout.
if importlib.util.find_spec("ganbench.metrics.lenet") is not None:
    importlib.import_module("ganbench.metrics.lenet")
