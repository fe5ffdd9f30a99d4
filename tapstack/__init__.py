"""TAP: the native stack, shop simulator, collector, loader, report and CLI.

The Spark jobs live in the ``tap_spark`` package under spark/.
"""

__version__ = "0.1.0"
