"""An exponential moving average (EMA) of the weights a run trains, kept as buffers of the module that trains.

EDM (Karras et al. 2022, Sec. 5 and App. F) evaluates an EMA of the network's weights rather than the last
iterate, and SVD's training inherits that recipe. The toy preset saves the last iterate (``TrainConfig.ema_decay =
None``); with ``ema_decay`` set, :func:`remoco.train.run_loop` keeps the average and the run saves it instead.

diffusers has :class:`diffusers.training_utils.EMAModel`, but its shadow weights are a plain list that
``accelerator.save_state`` does not write, so a resumed run would restart the average (or need a pickled custom
state). Here the shadow weights are persistent buffers of the trained module: the checkpoint's safetensors carry
them, and a run killed and resumed continues the same average to the bit. The decay follows EMAModel's default
warm-up: at optimizer step ``t`` (1-based) it is ``min(decay, (1 + t) / (10 + t))``, so early steps, far from the
final weights, are forgotten quickly.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EMA_PREFIX", "ema_decay_at", "attach_ema", "update_ema", "copy_ema_to"]

#: Name prefix of the shadow buffers on the trained module (``ema_shadow_<i>``, i = index in the parameter list).
EMA_PREFIX = "ema_shadow_"


def ema_decay_at(decay: float, step: int) -> float:
    """The decay applied at optimizer step ``step`` (1-based): ``min(decay, (1 + step) / (10 + step))``."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay < 1:
        raise ValueError(f"decay must be a number in (0, 1), got {decay!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"step must be an int >= 1 (optimizer steps are counted from 1), got {step!r}")
    return min(float(decay), (1 + step) / (10 + step))


def attach_ema(module: nn.Module, params: list) -> list[torch.Tensor]:
    """Register on ``module`` one persistent buffer per tensor of ``params`` (the trained parameters, in the
    optimizer's order), a detached fp32 copy of its current value, and return the buffers. Call it before
    ``accelerator.prepare`` / ``load_state`` so that checkpoints save and restore them with the module."""
    params = list(params)
    if not params:
        raise ValueError("params: expected the trained parameters, got none")
    if any(name.startswith(EMA_PREFIX) for name, _ in module.named_buffers(recurse=False)):
        raise ValueError("module already carries EMA buffers (attach_ema was called twice)")
    shadows = []
    for i, p in enumerate(params):
        module.register_buffer(f"{EMA_PREFIX}{i}", p.detach().float().clone(), persistent=True)
        shadows.append(getattr(module, f"{EMA_PREFIX}{i}"))
    return shadows


@torch.no_grad()
def update_ema(shadows: list[torch.Tensor], params: list, decay: float, step: int) -> float:
    """One EMA step after optimizer step ``step``: ``shadow <- d * shadow + (1 - d) * param`` with ``d =``
    :func:`ema_decay_at` ``(decay, step)``. Returns ``d``."""
    d = ema_decay_at(decay, step)
    params = list(params)
    if len(params) != len(shadows):
        raise ValueError(f"params: expected {len(shadows)} tensors (one per shadow), got {len(params)}")
    torch._foreach_lerp_(shadows, [p.detach().float() for p in params], 1.0 - d)
    return d


@torch.no_grad()
def copy_ema_to(params: list, shadows: list[torch.Tensor]) -> None:
    """Overwrite each parameter with its shadow (cast to the parameter's dtype): the weights a run saves."""
    params = list(params)
    if len(params) != len(shadows):
        raise ValueError(f"params: expected {len(shadows)} tensors (one per shadow), got {len(params)}")
    for p, s in zip(params, shadows):
        p.copy_(s.to(p.dtype))
