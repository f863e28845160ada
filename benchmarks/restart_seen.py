"""Does the toy base lose the object because it memorised its training clips? The restart probe on seen clips.

``benchmarks/restart_noise.py`` restarts the sampler from chapter 5's held-out object clips noised to a level sigma
and finds that the base leaves about the latent error of a video repeating frame 1 from sigma = 1. A base that had
memorised its training set would do much better on the clips it was trained on than on new ones (more, different
clips would then be the lever); a base that underfits does about as badly on both (capacity or training compute
would be). For each ``--system NAME=FOLDER`` (a base pipeline folder trained on synthetic clips; its
``provenance.json`` names the training set) and each level in ``--sigmas``, three sets of ``--clips`` object clips
are restarted exactly as there (one noise draw per clip from seed 12345 + 1000 + i, 15 Karras steps, SVD's guidance
ramp, motion bucket 127):

* ``"training clips"``: the first object clips of the base's training set itself
  (:meth:`remoco.clips.TrainClips.synthetic_clip`; the toy preset's base saw each about ten times);
* ``"unseen clips, training photographs"``: object clips of the same recipe with another data seed (777), cut from
  the same photographs, which it never saw;
* ``"chapter 5's held-out clips"``: those of the restart study (seed 12345, the bench's photographs).

Per clip: whether the object is found again by its frame-1 look (:func:`remoco.evaluate.object_appearance_motion`)
and the final latents' RMS error to the clip's latents.

    .venv/bin/python benchmarks/restart_seen.py --system "plain (retrained)=runs/plain-ship/toy-base/unet/final"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import data, evaluate, restart, runs, shipped, speed
from remoco.clips import TrainClips
from remoco.config import TrainConfig

REPO = Path(__file__).resolve().parent.parent
SEED = 12345  # chapter 5's held-out clips and the restart study's noise draws


def object_clips(cfg: TrainConfig, n: int) -> list:
    """The first ``n`` object clips of the training set ``cfg`` describes, in its order."""
    ds = TrainClips(cfg, with_flow=False)
    out = []
    for i in range(len(ds)):
        clip = ds.synthetic_clip(i)
        if clip.kind == "object":
            out.append(clip)
            if len(out) == n:
                return out
    raise SystemExit(f"--clips {n}: the training set holds only {len(out)} object clips")


def clip_sets(cfg: TrainConfig, n: int) -> dict[str, list]:
    return {"training clips": object_clips(cfg, n),
            "unseen clips, training photographs": object_clips(cfg.replace(data_seed=777), n),
            "chapter 5's held-out clips": [data.make_clip(SEED + i, 8, 64, 64, kind="object") for i in range(n)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", action="append", required=True, help="NAME=FOLDER (a base pipeline folder)")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.25, 1.0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "results" / "restart_seen.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    seeds = [SEED + 1000 + i for i in range(a.clips)]
    out = {"what": __doc__.split("\n\n")[0], "clips": a.clips, "sigmas": a.sigmas, "systems": {}}
    for text in a.system:
        system, _, folder = text.partition("=")
        base = shipped.load_shipped_base(Path(folder))
        cfg = TrainConfig.from_dict(json.loads((Path(folder) / "provenance.json").read_text())["config"])
        sets = clip_sets(cfg, a.clips)  # each base's own training clips
        brushes = {name: [evaluate.object_trajectory(c)[1] for c in clips] for name, clips in sets.items()}
        res = out["systems"][system] = {"folder": folder, "machine": speed.machine_summary(), "sets": {},
                                        "real found": {name: [evaluate.object_appearance_motion(c.video.numpy(), b)[1]
                                                              for c, b in zip(clips, brushes[name])]
                                                       for name, clips in sets.items()}}
        for name, clips in sets.items():
            vids = [c.video.numpy() for c in clips]
            lat = torch.stack([restart.clip_latents(base.vae, v) for v in vids])
            rec = res["sets"][name] = {}
            for s in a.sigmas:
                t = time.perf_counter()
                videos, finals = restart.restarted_videos(base, vids, seeds, s)
                found = [evaluate.object_appearance_motion(v, b)[1] for v, b in zip(videos, brushes[name])]
                err = (finals.float() - lat).pow(2).mean(dim=(2, 3, 4)).sqrt().mean(dim=1)
                rec[str(s)] = {"appearance found": found, "latent rmse": err.tolist(),
                               "seconds": time.perf_counter() - t}
                print(f"{system}  {name:36s} sigma {s:5.2f}: found {100 * np.mean(found):5.1f} %  latent RMSE "
                      f"{err.mean():.3f}  (real clips {100 * np.mean(res['real found'][name]):.0f} %)", flush=True)
        runs.write_json(a.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
