"""remoco — a reproduction of *Region-wise Motion Controller for Image-to-Video Generation* (ReMoCo).

Submodules are imported lazily so that ``import remoco`` stays cheap (torch and diffusers load only
when a submodule that needs them is used)::

    import remoco
    remoco.conditions.region_trajectory(...)
"""

import importlib

from remoco._progress import configure_progress as _configure_progress

__version__ = "0.1.0"

# $REMOCO_PROGRESS=text|off turns tqdm's notebook widgets into text or off (the book build sets "off").
_configure_progress()

_SUBMODULES = (
    "book_utils",
    "conditions",
    "controller",
    "data",
    "edm",
    "flow",
    "models",
    "pipeline",
    "shipped",
    "drawing",
    "train",
    "video",
    "widgets",
)


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'remoco' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
