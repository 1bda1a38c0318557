"""Built-in metrics and feature extractors of ganbench."""
