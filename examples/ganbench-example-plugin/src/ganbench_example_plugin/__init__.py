"""An example ganbench plug-in (see README.md).

Nothing is imported here: ganbench imports each module only when its entry point is
first used, so a plug-in costs nothing until then.
"""
