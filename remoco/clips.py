"""Which clips a training run reads, and in which order: :class:`TrainClips` (synthetic clips or a folder of
videos, with their flow and visibility) and :class:`StepBatchSampler` (the data order as a pure function of
the seed and the step, so a resumed run reads the same batches)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig

__all__ = ["TrainClips", "StepBatchSampler", "collate_clips"]


class TrainClips(torch.utils.data.Dataset):
    """Clips for training: item ``i`` is a dict with ``index``, ``video`` (L, H, W, 3) uint8, ``flow``
    (L, H, W, 2) and ``visibility`` (L, H, W) (Eq. 4), deterministic in ``(data_seed, i)``.

    Synthetic data: clip ``i`` is :func:`remoco.data.make_clip` with seed :func:`remoco.data.clip_seed`
    ``(data_seed, i)`` (as :class:`remoco.data.SyntheticClipDataset`), its kind drawn from ``clip_kinds`` with a
    generator seeded by ``(data_seed, i)``. ``flow_source="gt"`` keeps the generator's exact flow, otherwise
    :func:`remoco.flow.estimate_flow` (DOT's role in Eq. 4) labels the clip (cached per clip).
    A folder of videos (paper scale): ``*.mp4|*.gif|*.webm`` read with :func:`remoco.video.read_video`,
    resized/centre-cropped to ``height x width``."""

    def __init__(self, config: TrainConfig, with_flow: bool = True):
        self.cfg = config
        self.with_flow = with_flow
        self._flow_cache: dict = {}
        self._clip_cache: dict = {}
        if config.data == "synthetic":
            self.files = None
            self.n = config.num_clips
        else:
            root = Path(config.data)
            if not root.is_dir():
                raise FileNotFoundError(f"TrainConfig.data={config.data!r}: expected 'synthetic' or a folder of videos")
            self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mp4", ".gif", ".webm", ".avi"))
            if not self.files:
                raise FileNotFoundError(f"TrainConfig.data={config.data!r} holds no .mp4/.gif/.webm/.avi videos")
            self.n = min(len(self.files), config.num_clips)
        if config.clip_kinds:
            names = sorted(config.clip_kinds)
            w = np.array([config.clip_kinds[n] for n in names], float)
            self._kinds, self._kind_p = names, w / w.sum()
        else:
            self._kinds = None

    def __len__(self):
        return self.n

    def kind_of(self, i: int) -> str | None:
        if self._kinds is None:
            return None
        rng = np.random.default_rng(np.random.SeedSequence([self.cfg.data_seed, 7919, int(i)]))
        return self._kinds[int(rng.choice(len(self._kinds), p=self._kind_p))]

    def synthetic_clip(self, i: int):
        """Synthetic clip ``i`` of this training set as a :class:`remoco.data.SyntheticClip` (with its masks and
        metadata, which the training items leave out): the one rule behind the items, so a probe of the training
        clips (``benchmarks/restart_seen.py``) sees exactly what the run trained on."""
        from . import data

        cfg = self.cfg
        if self.files is not None:
            raise ValueError(f"TrainConfig.data={cfg.data!r}: synthetic_clip needs data='synthetic'")
        i = int(i)
        if not 0 <= i < self.n:
            raise IndexError(f"clip index {i} out of range for {self.n} clips")
        return data.make_clip(data.clip_seed(cfg.data_seed, i), cfg.num_frames, cfg.height, cfg.width,
                              kind=self.kind_of(i), photos=data.PHOTO_SETS[cfg.photos])

    def _draw(self, i: int) -> tuple:
        """``(video, flow, visibility)`` of synthetic clip ``i``: what an item holds (lazy read or :meth:`prefill`)."""
        clip = self.synthetic_clip(i)
        return clip.video, clip.flow, clip.visibility

    def prefill(self, processes: int) -> None:
        """Draw every synthetic clip now, ``processes`` at a time, and keep them all (``cache_clips``).

        Each clip is deterministic in ``(data_seed, i)``, so the items are the tensors a lazy draw gives; what
        changes is when they are drawn. On a GPU a clip (~20 ms of CPU) costs more than a training step's share,
        so a long run draws them up front; loader workers forked afterwards start with all of them."""
        import multiprocessing as mp

        if self.files is not None:
            raise ValueError(f"TrainConfig.data={self.cfg.data!r}: prefill needs data='synthetic'")
        if not self.cfg.cache_clips:
            raise ValueError("prefill keeps every clip: it needs TrainConfig.cache_clips=True")
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be an int >= 1, got {processes!r}")
        todo = [i for i in range(self.n) if i not in self._clip_cache]
        if processes == 1:
            self._clip_cache.update((i, self._draw(i)) for i in todo)
            return
        with mp.get_context("fork").Pool(processes) as pool:
            for i, item in zip(todo, pool.imap(self._draw, todo, chunksize=16)):
                self._clip_cache[i] = item

    def __getitem__(self, i: int) -> dict:
        cfg = self.cfg
        i = int(i)
        if not 0 <= i < self.n:
            raise IndexError(f"clip index {i} out of range for {self.n} clips")
        if self.files is None:
            # a synthetic clip costs ~80 ms to draw and is read ~5 times in a toy run: keep it (same tensors,
            # so the trained weights do not depend on cache_clips)
            if i in self._clip_cache:
                video, flow, vis = self._clip_cache[i]
            else:
                video, flow, vis = self._draw(i)
                if cfg.cache_clips:
                    self._clip_cache[i] = (video, flow, vis)
        else:
            from . import video as vio

            v = vio.read_video(self.files[i], num_frames=cfg.num_frames)
            video = vio.resize_center_crop(v, cfg.height, cfg.width)
            flow = vis = None
        item = {"index": i, "video": video}
        if self.with_flow:
            if cfg.flow_source != "gt":
                if i not in self._flow_cache:
                    from . import flow as fl

                    backend = None if cfg.flow_source == "opencv" else cfg.flow_source
                    self._flow_cache[i] = fl.estimate_flow(video, backend=backend)
                flow, vis = self._flow_cache[i]
            item["flow"], item["visibility"] = flow, vis
        return item


class StepBatchSampler(torch.utils.data.Sampler):
    """Index lists of the micro-batches ``start .. stop-1`` for one process.

    The global stream of sample positions is cut into micro-batches of ``batch_size * num_processes``;
    process ``r`` takes its slice. Position ``p`` reads clip ``perm_e[p mod N]`` where ``perm_e`` is the
    permutation of epoch ``e = p // N`` seeded by ``(seed, e)``. So the data order depends only on the
    seed and the step — the dataloader "position" after a resume is the step itself."""

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int, stop: int,
                 process_index: int = 0, num_processes: int = 1):
        self.n, self.bs, self.seed = int(num_items), int(batch_size), int(seed)
        self.start, self.stop = int(start), int(stop)
        self.rank, self.world = int(process_index), int(num_processes)
        self._perm: dict = {}

    def _clip_at(self, pos: int) -> int:
        e = pos // self.n
        if e not in self._perm:
            self._perm = {e: np.random.default_rng(np.random.SeedSequence([self.seed, 104729, e])).permutation(self.n)}
        return int(self._perm[e][pos % self.n])

    def indices(self, micro: int) -> list[int]:
        base = (micro * self.world + self.rank) * self.bs
        return [self._clip_at(base + j) for j in range(self.bs)]

    def __iter__(self):
        for m in range(self.start, self.stop):
            yield self.indices(m)

    def __len__(self):
        return max(0, self.stop - self.start)


def collate_clips(items: list[dict]) -> dict:
    out = {"index": torch.tensor([it["index"] for it in items])}
    for key in ("video", "flow", "visibility"):
        if key in items[0] and items[0][key] is not None:
            out[key] = torch.stack([torch.as_tensor(it[key]) for it in items])
    return out
