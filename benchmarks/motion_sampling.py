"""Can the toy base be sampled into moving more? The sampling levers of base motion, which need no training.

For each ``--system NAME=FOLDER`` (a base pipeline folder, e.g. ``data/checkpoints/toy-base``) and each sampling
arm (one setting changed at a time from SVD's defaults: motion bucket 127, guidance ramp 1.0 -> 3.0 over frames,
noise augmentation 0.02, ``--steps`` sampler steps), the moving object's displacement by the last frame in the
base's own videos and in the real clips (as :func:`remoco.evaluate.generated_motion`: ``--clips`` held-out object
clips from seed 12345, OpenCV DIS flow), the object's colour shift from the first to the last frame and the
generated first frame's PSNR to the conditioning image (as :func:`remoco.fidelity.first_frame_fidelity`), all from
the same videos. In the ``--appearance-arms`` the motion is also measured by appearance
(:func:`remoco.evaluate.object_appearance_displacement`: the object found again by its frame-1 look, no motion
credited where it is not found), which does not credit a still object that changes colour. Each system's ceiling
is measured too: the real clips encoded and decoded by its own autoencoder (``"through its autoencoder"``), the
most motion, by either metric, a base could render through that decoder. Every arm sees the
same clips and initial noises, so arms are compared clip by clip (paired differences to the default arm, 95 % t
interval).

The toy base is trained with ``motion_bucket="flow"``: each clip's bucket is ``round(40 x its mean flow
magnitude)``, so object clips sit near bucket 35 (median; chapter 5) while 127 is the camera-motion clips'
range. The arms ``bucket=35`` and ``bucket=60`` ask the base for the motion of the clips it is measured on.

    .venv/bin/python benchmarks/motion_sampling.py --system shipped=data/checkpoints/toy-base \\
        --system plain=runs/plain-ship/toy-base --out results/motion_sampling.json
    .venv/bin/python benchmarks/motion_sampling.py --merge --system robust=runs/plain-robust \\
        --arms "default (bucket 127, guidance 1 → 3)" "no guidance (1 → 1)"   # benchmarks/decoder_noise.py's

With ``--merge`` a system already in ``--out`` keeps the arms that are not re-run (``--arms`` with no names: only
the ceiling is measured).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import decide, evaluate, fidelity, objective, runs, shipped, speed
from remoco.data import make_clip

REPO = Path(__file__).resolve().parent.parent

#: One setting changed at a time from the default arm (SVD's defaults).
ARMS = {
    "default (bucket 127, guidance 1 → 3)": {},
    "bucket 35 (object clips' median)": {"motion_bucket_id": 35},
    "bucket 60": {"motion_bucket_id": 60},
    "bucket 90": {"motion_bucket_id": 90},
    "bucket 180": {"motion_bucket_id": 180},
    "bucket 255": {"motion_bucket_id": 255},
    "no guidance (1 → 1)": {"max_guidance_scale": 1.0},
    "constant guidance 2": {"min_guidance_scale": 2.0, "max_guidance_scale": 2.0},
    "noise augmentation 0.05": {"noise_aug_strength": 0.05},
}

#: The training settings of each base kept beside its results (from its provenance.json).
TRAINED_FIELDS = ("max_steps", "p_mean", "p_std", "vae_kind", "vae_steps", "vae_latent_noise", "unet_channels",
                  "unet_attention")

#: The arms whose videos are also measured by appearance (about 1 s a clip on 2 threads).
APPEARANCE_ARMS = ("default (bucket 127, guidance 1 → 3)", "bucket 255", "no guidance (1 → 1)")


def save_strips(strips: list, path: str, scale: int = 2) -> None:
    """One row of frames per clip and system (clip by clip: the real clip, then each system), nearest-upscaled."""
    import PIL.Image

    rows = [np.concatenate(list(videos[i]), axis=1) for i in range(len(strips[0][1])) for _, videos in strips]
    img = np.concatenate(rows, axis=0).repeat(scale, axis=0).repeat(scale, axis=1)
    PIL.Image.fromarray(img).save(path, optimize=True)
    print(f"{path}: rows per clip = {[name for name, _ in strips]}")


def measure(videos, clips, brushes, appearance: bool) -> dict:
    """Per clip: the object's motion by flow (``"base px"``), its colour shift, the first frame's PSNR to the
    clip's, and with ``appearance`` its motion by appearance and whether it was found."""
    r = {"base px": [evaluate.object_displacement(v, b) for v, b in zip(videos, brushes)],
         "colour shift": [fidelity.object_colour_shift(v, b) for v, b in zip(videos, brushes)],
         "first frame psnr": [fidelity.psnr(c.video[0].numpy(), v[0]) for c, v in zip(clips, videos)]}
    if appearance:
        found = [evaluate.object_appearance_motion(v, b) for v, b in zip(videos, brushes)]
        r["appearance px"], r["appearance found"] = [px for px, _ in found], [f for _, f in found]
    return r


def paired(a, b, scale: float = 1.0) -> dict:
    """95 % t interval of ``scale * (a - b)`` over the clips where both are measured (a colour shift is NaN
    where the tracked object left the frame)."""
    d = scale * (np.asarray(a, float) - np.asarray(b, float))
    d = d[np.isfinite(d)]
    if d.std() == 0:  # the default arm against itself
        return {"mean": float(d.mean()), "low": float(d.mean()), "high": float(d.mean()), "n": int(d.size)}
    return decide.t_interval(d)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", action="append", required=True, help="NAME=FOLDER (a base pipeline folder)")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--steps", type=int, default=15, help="sampler steps of every arm but the 'steps' one")
    ap.add_argument("--arms", nargs="*", default=None, help="arm names (default: all of ARMS, then '30 steps')")
    ap.add_argument("--appearance-arms", nargs="*", default=list(APPEARANCE_ARMS),
                    help="arms also measured by appearance (evaluate.object_appearance_displacement)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "results" / "motion_sampling.json"))
    ap.add_argument("--merge", action="store_true", help="keep the systems already in --out (same clips and seed)")
    ap.add_argument("--frames", default=None, help="also save a PNG: the first 3 clips, real and each system's "
                                                   "video in the first arm, every frame at 2x")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    seed = 12345
    arms = {name: dict(kw, num_inference_steps=a.steps) for name, kw in ARMS.items()}
    arms[f"{2 * a.steps} sampler steps"] = {"num_inference_steps": 2 * a.steps}
    if a.arms is not None:
        unknown = sorted(set(a.arms) - set(arms))
        if unknown:
            raise SystemExit(f"--arms: unknown {unknown}; known: {sorted(arms)}")
        arms = {n: arms[n] for n in a.arms}
    clips = [make_clip(seed + i, 8, 64, 64, kind="object") for i in range(a.clips)]
    brushes = [evaluate.object_trajectory(c)[1] for c in clips]
    noise_seeds = [seed + 1000 + i for i in range(a.clips)]  # as evaluate.generated_motion
    data_px = [evaluate.object_displacement(c.video, b) for c, b in zip(clips, brushes)]
    real = float(np.mean(data_px))
    data_app, data_found = zip(*(evaluate.object_appearance_motion(c.video, b) for c, b in zip(clips, brushes)))
    real_app = float(np.mean(data_app))
    out = {"what": __doc__.split("\n\n")[0], "machine": speed.machine_summary(), "clips": a.clips, "seed": seed,
           "flow": "OpenCV DIS", "arms": arms, "data px": data_px, "data appearance px": data_app,
           "data appearance found": data_found,
           "appearance min score": evaluate.APPEARANCE_MIN_SCORE, "appearance margin": evaluate.APPEARANCE_MARGIN,
           "data colour shift": [fidelity.object_colour_shift(c.video, b) for c, b in zip(clips, brushes)],
           "data buckets": [objective.motion_bucket_from_flow(c.flow) for c in clips], "systems": {}}
    if a.merge and Path(a.out).is_file():
        old = json.loads(Path(a.out).read_text())
        if (old["clips"], old["seed"]) != (a.clips, seed):
            raise SystemExit(f"--merge: {a.out} holds {old['clips']} clips from seed {old['seed']}, not {a.clips}")
        out["systems"], out["arms"] = runs.merged_systems(old), old["arms"] | arms
        out["machine"] = old["machine"]
        out["appearance arms"] = sorted(set(old.get("appearance arms", [])) | set(a.appearance_arms))
    else:
        out["appearance arms"] = sorted(a.appearance_arms)
    strips = [("real clips", [c.video.numpy() for c in clips[:3]])]
    for text in a.system:
        name, _, folder = text.partition("=")
        base = shipped.load_shipped_base(Path(folder))
        trained = json.loads((Path(folder) / "provenance.json").read_text())["config"]
        res = {"folder": folder, "motion_bucket": trained["motion_bucket"], "arms": {},
               "machine": speed.machine_summary(), "trained": {k: trained.get(k) for k in TRAINED_FIELDS}}
        if a.merge and name in out["systems"]:  # keep the arms not re-run now
            res["arms"] = {k: v for k, v in out["systems"][name]["arms"].items() if k not in arms}
        recs = [fidelity.reconstruct(base.vae, c.video.numpy()) for c in clips]
        ceiling = res["through its autoencoder"] = measure(recs, clips, brushes, appearance=True)
        print(f"{name:>10s}  {'real clips through its autoencoder':40s} motion "
              f"{100 * np.mean(ceiling['base px']) / real:5.1f} %   by appearance "
              f"{100 * np.mean(ceiling['appearance px']) / real_app:5.1f} %   colour shift "
              f"{np.nanmean(ceiling['colour shift']):5.1f}", flush=True)
        for arm, kw in arms.items():
            t = time.perf_counter()
            videos = evaluate.generated_videos_from_first_frames({"base": base}, clips, noise_seeds, **kw)["base"]
            r = measure(videos, clips, brushes, appearance=arm in a.appearance_arms)
            r["ratio"] = float(np.mean(r["base px"])) / real
            if "appearance px" in r:
                r["appearance ratio"] = float(np.mean(r["appearance px"])) / real_app
            r["seconds"] = time.perf_counter() - t
            res["arms"][arm] = r
            if arm == next(iter(arms)):
                strips.append((name, videos[:3]))
            by_look = f"   by appearance {100 * r['appearance ratio']:5.1f} %" if "appearance px" in r else ""
            print(f"{name:>10s}  {arm:40s} motion {100 * r['ratio']:5.1f} %{by_look}   colour shift "
                  f"{np.nanmean(r['colour shift']):5.1f}   frame 1 {np.mean(r['first frame psnr']):5.2f} dB  "
                  f"({r['seconds']:.0f} s)", flush=True)
        res["arms"] = {k: res["arms"][k] for k in out["arms"] if k in res["arms"]}  # the arms in ARMS order
        ref = next(iter(res["arms"].values()))
        for arm, r in res["arms"].items():
            gaps = {"motion (share of data)": paired(r["base px"], ref["base px"], 1 / real),
                    "colour shift": paired(r["colour shift"], ref["colour shift"]),
                    "first frame psnr": paired(r["first frame psnr"], ref["first frame psnr"])}
            if "appearance px" in r and "appearance px" in ref:
                gaps["motion by appearance (share of data)"] = paired(r["appearance px"], ref["appearance px"],
                                                                      1 / real_app)
            r["paired vs default"] = gaps
        out["systems"][name] = res
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        runs.write_json(a.out, out)
    if a.frames and arms:
        save_strips(strips, a.frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
