"""ganbench: fair, reproducible benchmarking of generative adversarial networks."""
from __future__ import annotations

__version__ = "0.1.0"
