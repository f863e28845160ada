"""The shipped toy checkpoints (``data/checkpoints``): train and copy them (:func:`ship`), load them back."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .config import SHIPPED_DIR, VARIANTS, preset_config
from .runs import atomic_dir, peak_rss_mb, write_json
from .train import train

__all__ = ["SHIPPED_DIR", "ship", "load_shipped_base", "load_shipped_pipeline"]

_SHIP_FILES_BASE = ("model_index.json", "vae", "unet", "image_encoder", "scheduler", "feature_extractor")


def ship(out_root="runs/ship", dest=SHIPPED_DIR, preset: str = "toy-cpu", variants=("remoco",),
         progress: bool = True) -> dict:
    """Train the toy base and the controller variants from scratch and copy the weights (safetensors, no
    optimizer state), configs, CSV logs and provenance to ``dest`` (``data/checkpoints/toy-base`` and
    ``data/checkpoints/<variant>-toy``). Resumable: the work happens in ``out_root``."""
    out_root, dest = Path(out_root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    base_cfg = preset_config(preset, "base", out_dir=str(out_root / "toy-base"), progress=progress)
    t0 = time.perf_counter()
    base = train(base_cfg)
    summary["base"] = dict(seconds=base.seconds, final_loss=base.final_loss, wall=time.perf_counter() - t0)
    if base.final_path is None:
        raise RuntimeError("base training did not finish")
    with atomic_dir(dest / "toy-base") as tmp:
        for name in _SHIP_FILES_BASE:
            src = base.final_path / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp / name)
        shutil.copy2(base.final_path / "provenance.json", tmp / "provenance.json")
        (tmp / "logs").mkdir()
        for k, p in base.logs.items():
            shutil.copy2(p, tmp / "logs" / f"{k}.csv")
        base_cfg.replace(out_dir="runs/toy-base", base="data/checkpoints/toy-base").to_yaml(tmp / "config.yaml")
    for variant in variants:
        t0 = time.perf_counter()
        ccfg = preset_config(preset, "controller", variant=variant, base=str(base.final_path),
                             out_dir=str(out_root / f"{variant}-toy"), progress=progress)
        res = train(ccfg)
        summary[variant] = dict(seconds=res.seconds, final_loss=res.final_loss, wall=time.perf_counter() - t0)
        if res.final_path is None:
            raise RuntimeError(f"controller {variant} training did not finish")
        with atomic_dir(dest / f"{variant}-toy") as tmp:
            shutil.copytree(res.final_path, tmp, dirs_exist_ok=True)
            shutil.copy2(res.logs["controller"], tmp / "log.csv")
            ccfg.replace(out_dir=f"runs/{variant}-toy", base="data/checkpoints/toy-base").to_yaml(tmp / "config.yaml")
    summary["peak_rss_mb"] = peak_rss_mb()
    write_json(dest / "ship_summary.json", summary)
    for f in dest.rglob("*"):  # safetensors' writer creates 0600 files
        if f.is_file():
            f.chmod(0o644)
    return summary


def load_shipped_base(path=None):
    """The shipped toy base model (``data/checkpoints/toy-base``) as a diffusers
    :class:`~diffusers.StableVideoDiffusionPipeline` on the CPU, progress bar off."""
    from . import models

    p = Path(path) if path is not None else SHIPPED_DIR / "toy-base"
    if not (p / "model_index.json").is_file():
        raise FileNotFoundError(f"path={str(p)!r} has no model_index.json: regenerate the shipped checkpoints "
                                "with `remoco ship`")
    pipe = models.load_svd_pipeline(str(p))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_shipped_pipeline(variant: str = "remoco", base_path=None, controller_path=None):
    """Toy base + shipped controller ``variant`` as a :class:`remoco.pipeline.ReMoCoPipeline` (CPU, ready
    to sample). Variants other than ``"remoco"`` must have been trained into ``data/checkpoints/<variant>-toy``
    (``remoco ship --variants remoco gaussian ...``)."""
    from .controller import load_controller
    from .pipeline import ReMoCoPipeline

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    cp = Path(controller_path) if controller_path is not None else SHIPPED_DIR / f"{variant}-toy"
    if not (cp / "controller" / "config.json").is_file():
        raise FileNotFoundError(f"controller_path={str(cp)!r} has no controller/config.json: train it with "
                                f"`remoco ship --variants remoco {variant}`")
    base = load_shipped_base(base_path)
    controller = load_controller(cp, base.unet, attach=True)
    pipe = ReMoCoPipeline.from_base(base, controller=controller)
    pipe.set_progress_bar_config(disable=True)
    return pipe
