"""Built-in metrics and feature extractors of ganbench.

Importing this package registers the built-in metrics in ``ganbench.registry.metrics``
(it is that registry's built-in module). Feature extractors live in
``ganbench.metrics.extractors``, the feature-extractor registry's own module, and are
not imported here.
"""
from importlib import import_module
from importlib.util import find_spec

from ganbench.metrics import class_accuracy, density_coverage, fid, isc, kid, paired, prc  # noqa: F401  (registration)
from ganbench.metrics import infinity  # noqa: F401  (registration: fid-inf, isc-inf)
from ganbench.metrics import cmmd, fd, intra_fid, sfid, vendi  # noqa: F401  (registration: feature-space maths)
from ganbench.metrics import cas, memorization  # noqa: F401  (registration: cas; ct, authpct)

# Metrics that sample the generator itself; optional so that the package imports without them.
for _name in ("lpips", "ppl", "diversity"):
    if find_spec(f"{__name__}.{_name}") is not None:
        import_module(f"{__name__}.{_name}")
del _name
