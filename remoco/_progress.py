"""Progress bars: interactive widgets in a notebook, plain text or off where a widget cannot live.

A ``tqdm.auto`` bar (the library's training loop, diffusers' and transformers' loading and sampling bars)
becomes an ipywidgets progress widget when it runs in a Jupyter kernel. That is what a reader running a
chapter wants, but an executed *book* would then store widget state whose HTML view needs ipywidgets'
JavaScript from a CDN. The environment variable ``REMOCO_PROGRESS`` chooses, for every process that
imports :mod:`remoco`:

``auto`` (default, or unset)
    tqdm decides (a widget in Jupyter, text in a terminal).
``text``
    plain-text bars everywhere (``tqdm.auto`` / ``tqdm.autonotebook`` resolve to ``tqdm.std.tqdm``).
``off``
    no bar at all: every tqdm bar is created disabled, even one asked for with ``disable=False``
    (the book's build sets this: see :mod:`remoco._sphinx_book`).
"""

from __future__ import annotations

import functools
import os
import sys

ENV_VAR = "REMOCO_PROGRESS"
MODES = ("auto", "text", "off")

_applied: str | None = None


def progress_mode() -> str:
    """The mode asked for by ``$REMOCO_PROGRESS`` (``auto`` when unset or empty)."""
    mode = (os.environ.get(ENV_VAR) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{ENV_VAR}: expected one of {', '.join(MODES)}, got {mode!r}")
    return mode


def configure_progress(mode: str | None = None) -> str:
    """Apply ``mode`` (default: ``$REMOCO_PROGRESS``) to tqdm in this process; returns the mode applied.

    ``off`` and ``text`` patch tqdm process-wide and cannot be undone (they are meant for batch runs).
    """
    global _applied
    mode = progress_mode() if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto" or mode == _applied:
        return mode
    import tqdm.std

    if mode == "off":
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
        init = tqdm.std.tqdm.__init__
        if not getattr(init, "_remoco_off", False):
            # every tqdm class (std, notebook, huggingface_hub's) runs std's __init__: a disabled bar
            # never creates its notebook widget, and update()/close() are no-ops.
            @functools.wraps(init)
            def __init__(self, *args, **kwargs):
                kwargs["disable"] = True
                init(self, *args, **kwargs)

            __init__._remoco_off = True
            tqdm.std.tqdm.__init__ = __init__
    else:  # text
        import tqdm.auto
        import tqdm.autonotebook

        notebook_cls = tqdm.autonotebook.tqdm
        for mod in (tqdm.auto, tqdm.autonotebook):
            mod.tqdm = tqdm.std.tqdm
            mod.trange = tqdm.std.trange
        # modules that already did `from tqdm.auto import tqdm` keep the notebook class: rebind them
        for mod in list(sys.modules.values()):
            if mod is not None and getattr(mod, "tqdm", None) is notebook_cls and notebook_cls is not tqdm.std.tqdm:
                try:
                    mod.tqdm = tqdm.std.tqdm
                except (AttributeError, TypeError):  # pragma: no cover - read-only module objects
                    pass
    _applied = mode
    return mode
