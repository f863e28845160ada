"""Does a noise-robust decoder keep a generated object's colour? Fine-tunes a toy base's decoder on noisy latents.

Copies the base pipeline folder ``--base`` to ``--out`` and fine-tunes the copy's VAE decoder with
:func:`remoco.toy_vae.noise_robust_decoder` (encoder frozen, so the base's UNet, trained on the encoder's latents,
stays valid): ``--steps`` steps of the VAE stage's batches (the base's own training config: its clips, batch size and
frames), latent noise ``s ~ U[0, --noise]`` in units of the scaled latents. Measures the decoder before and after on
the held-out clips (:func:`remoco.fidelity.vae_fidelity`) and on latents with noise of std 0.3 and 0.6 added
(PSNR to the clean frames), and writes ``--json``. The videos the new folder generates are measured by
``benchmarks/motion_sampling.py`` (motion, colour shift, first frame) and ``benchmarks/toy_fidelity.py``.

    .venv/bin/python benchmarks/decoder_noise.py --base runs/plain-ship/toy-base --out runs/plain-robust \\
        --steps 600 --noise 0.6
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from remoco import fidelity, runs, speed, toy_vae
from remoco.clips import TrainClips
from remoco.config import TrainConfig
from remoco.objective import to_pixels
from remoco.train import vae_training_frames

REPO = Path(__file__).resolve().parent.parent


@torch.no_grad()
def noise_sensitivity(vae, clips: list[np.ndarray], levels=(0.3, 0.6), seed: int = 0) -> dict:
    """Mean PSNR of first frames decoded from their latents plus Gaussian noise of each std (scaled units)."""
    gen = torch.Generator().manual_seed(seed)
    sf = float(vae.config.scaling_factor)
    x = to_pixels(torch.from_numpy(np.stack([c[:1] for c in clips])))[:, 0]
    z = vae.encode(x).latent_dist.mode()
    out = {}
    for s in (0.0, *levels):
        rec = toy_vae.decode_frames(vae, z + s * torch.randn(z.shape, generator=gen) / sf, 1).clamp(-1, 1)
        u8 = ((rec + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        out[f"noise {s}"] = float(np.mean([fidelity.psnr(c[0], r) for c, r in zip(clips, u8)]))
    return out


def measure(vae, held: dict) -> dict:
    v = fidelity.vae_fidelity(vae, held)
    return {"psnr": {k: float(np.mean(d["psnr"])) for k, d in v.items()},
            "ssim": float(np.mean(v["all"]["ssim"])),
            "noisy latents (object clips, frame 1)": noise_sensitivity(vae, held["object clips"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="a base pipeline folder with the plain toy autoencoder")
    ap.add_argument("--out", required=True, help="the new pipeline folder (must not exist)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--noise", type=float, default=0.6)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=str(REPO / "results" / "decoder_noise.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    base, out = Path(a.base), Path(a.out)
    if out.exists():
        raise SystemExit(f"--out {out} exists: choose a new folder")
    prov = json.loads((base / "provenance.json").read_text())
    cfg = TrainConfig.from_dict({k: v for k, v in prov["config"].items()})
    shutil.copytree(base, out, symlinks=False)
    vae = toy_vae.load_vae(out / "vae")
    held = fidelity.held_out_clips()
    before = measure(vae.eval(), held)
    ds = TrainClips(cfg, with_flow=False)
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    def frames(step):
        idx = rng.choice(len(ds), cfg.vae_batch_size, replace=False)
        video = torch.stack([ds[int(i)]["video"] for i in idx])
        x = vae_training_frames(cfg, to_pixels(video), gen)  # (B, L', 3, h, w)
        return x.flatten(0, 1)

    t = time.perf_counter()
    losses = toy_vae.noise_robust_decoder(vae, frames, a.steps, a.noise, lr=a.lr, seed=a.seed)
    seconds = time.perf_counter() - t
    vae.eval()
    after = measure(vae, held)
    shutil.rmtree(out / "vae")
    vae.save_pretrained(out / "vae", safe_serialization=True)
    note = {"decoder fine-tuned": {"from": str(base), "steps": a.steps, "latent_noise": a.noise, "lr": a.lr,
                                   "seed": a.seed, "seconds": seconds}}
    runs.write_json(out / "provenance.json", prov | note)
    res = {"what": __doc__.split("\n\n")[0], "machine": speed.machine_summary(), "base": str(base), "out": str(out),
           "steps": a.steps, "latent_noise": a.noise, "lr": a.lr, "seed": a.seed, "seconds": seconds,
           "loss first/last 50": [float(np.mean(losses[:50])), float(np.mean(losses[-50:]))],
           "before": before, "after": after}
    runs.write_json(a.json, res)
    print(json.dumps({k: res[k] for k in ("seconds", "before", "after")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
