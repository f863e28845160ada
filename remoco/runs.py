"""How a run lives on disk: its seeds, provenance, atomic writes, checkpoints and CSV logs.

Everything a run writes goes through :func:`atomic_file` / :func:`atomic_dir` (write a temporary sibling,
then rename), so a run killed at any moment leaves either the old file or folder or the complete new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from .speed import machine_summary, stage_precision

__all__ = [
    "STAGE_ID",
    "seed_int",
    "step_generator",
    "peak_rss_mb",
    "merged_systems",
    "provenance",
    "write_json",
    "TMP_PREFIX",
    "atomic_file",
    "atomic_dir",
    "publish_dir",
    "CKPT_PREFIX",
    "list_checkpoints",
    "save_checkpoint",
    "clean_tmp",
    "is_finished",
    "LOG_FIELDS",
    "truncate_log",
    "read_log",
]

#: Stage numbers mixed into the seeds (a stage's draws never repeat another's).
STAGE_ID = {"vae": 1, "unet": 2, "controller": 3}
#: Prefix of temporary files and folders (hidden; removed when a run starts).
TMP_PREFIX = ".tmp-"
CKPT_PREFIX = "checkpoint-"


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary sibling path of ``path`` to write; on success it replaces ``path`` (``os.replace``),
    on error it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def publish_dir(tmp, final) -> Path:
    """Rename the complete folder ``tmp`` to ``final``. An existing ``final`` is first renamed aside (a hidden
    name) and deleted after the swap: ``final`` is never a half-written folder — a kill leaves the old
    folder, the new one, or (between the two renames) neither under that name, which a resumed run treats as
    a missing checkpoint."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f"{TMP_PREFIX}old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


@contextlib.contextmanager
def atomic_dir(final):
    """Yield an empty temporary sibling folder of ``final`` to fill; on success it is published as ``final``
    (:func:`publish_dir`), on error it is removed."""
    final = Path(final)
    tmp = final.with_name(TMP_PREFIX + final.name)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_dir(tmp, final)


def seed_int(*parts: int) -> int:
    """A 63-bit seed from integers (numpy SeedSequence: well mixed, platform independent)."""
    s = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint32)
    return int((int(s[0]) << 31) ^ int(s[1])) & 0x7FFFFFFFFFFFFFFF


def step_generator(seed: int, stage: str, step: int, micro: int = 0, process: int = 0) -> torch.Generator:
    """The generator of every random draw of one micro-batch: a pure function of
    (seed, stage, optimizer step, micro-batch, process) — so a resumed run draws the same numbers."""
    return torch.Generator().manual_seed(seed_int(seed, STAGE_ID[stage], step, micro, process))


def peak_rss_mb() -> float:
    """Peak resident set size of this process (and finished children), MiB (Linux ru_maxrss is in KiB)."""
    import resource

    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0


def _git_info() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"commit": None, "dirty": None}


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("torch", "diffusers", "transformers", "peft", "accelerate", "numpy", "opencv-python-headless",
                "safetensors", "remoco"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def provenance(config, **extra) -> dict:
    """Seeds, config (a :class:`~remoco.config.TrainConfig`), git commit and package versions of a run
    (written beside every checkpoint as JSON)."""
    return {
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(extra.get("stage")),
        "seed": config.seed,
        "data_seed": config.data_seed,
        "git": _git_info(),
        "versions": _versions(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "machine": machine_summary(),
        "mixed_precision_used": stage_precision(config.mixed_precision, extra.get("stage"),
                                                "cuda" if torch.cuda.is_available() else "cpu"),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def merged_systems(old: dict) -> dict:
    """The ``"systems"`` of a stored benchmark result (``{"machine": ..., "systems": {name: record}}``) that a
    ``--merge`` run keeps, each record with the processor it was measured on (``"machine"``; older records, written
    before it was kept per record, get the file's)."""
    systems = old["systems"]
    for record in systems.values():
        record.setdefault("machine", old["machine"])
    return systems


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically (:func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


CKPT_PREFIX = "checkpoint-"
TMP_PREFIX = ".tmp-"


def list_checkpoints(ckpt_root) -> list[tuple[int, Path]]:
    """Complete checkpoints (visible ``checkpoint-NNNNNN`` folders with ``train_state.json``), by step."""
    root = Path(ckpt_root)
    out = []
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and p.name.startswith(CKPT_PREFIX) and (p / "train_state.json").is_file():
                try:
                    out.append((int(p.name[len(CKPT_PREFIX):]), p))
                except ValueError:
                    continue
    return sorted(out)


def save_checkpoint(accelerator, ckpt_root, step: int, state: dict, prov: dict, keep: int = 2) -> Path:
    """``accelerator.save_state`` into a hidden temporary folder, then an atomic rename to
    ``checkpoint-{step:06d}``: a kill at any moment leaves either no new checkpoint or a complete one
    (``train_state.json`` and ``provenance.json`` are written last inside the temporary folder)."""
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{CKPT_PREFIX}{step:06d}"
    tmp = root / f"{TMP_PREFIX}{CKPT_PREFIX}{step:06d}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            write_json(tmp / "provenance.json", prov)
            write_json(tmp / "train_state.json", state)
            publish_dir(tmp, final)  # a re-save of the same step (resumed run) replaces it atomically
            for _, p in list_checkpoints(root)[:-keep]:
                trash = root / f"{TMP_PREFIX}del-{p.name}"
                os.replace(p, trash)
                shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()
    return final


def clean_tmp(root: Path) -> None:
    """Remove the temporary files and folders a killed run left in ``root``."""
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


LOG_FIELDS = ("step", "loss", "lr", "seconds")


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the header and the rows of steps <= last_step (a killed run may have logged steps beyond its
    last checkpoint; the resumed run logs them again)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= last_step]
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)


def read_log(path) -> dict[str, np.ndarray]:
    """A training CSV log (step, loss, lr, seconds) as numpy arrays."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"log path {str(p)!r} does not exist")
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in LOG_FIELDS}


def is_finished(final: Path, cfg, stage: str) -> bool:
    """True if ``final`` holds the finished model of this very config (a different config raises)."""
    prov_path = final / "provenance.json"
    if not prov_path.is_file():
        return False
    fp = json.loads(prov_path.read_text()).get("fingerprint")
    if fp != cfg.fingerprint(stage):
        raise ValueError(
            f"out_dir={str(cfg.out_dir)!r} holds a finished {stage} model of a different config (fingerprint "
            f"{fp} != {cfg.fingerprint(stage)}): use another out_dir or the same config")
    return True
