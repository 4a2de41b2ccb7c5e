"""The file formats `evolve ingest` reads: one module each, registered in :data:`evalsets.ingest.base.READERS`.

Readers import their libraries inside ``read`` so that listing formats (``--help``) loads none of them.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
