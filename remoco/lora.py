"""LoRA on the 3D-UNet (Eq. 9) and the UNet weights a controller may carry: what the controller adds to, or
changes in, the base model's own layers.

* :func:`add_lora` — LoRA (Eq. 9, ``W' = W + A B^T``) on every attention projection (to_q, to_k, to_v, to_out.0)
  of the spatial and temporal transformer blocks (``targets="attention"``, the paper) or on every linear layer
  (``targets="all_linear"``, the release), with peft's :func:`~peft.inject_adapter_in_model`.
* :func:`save_lora` / :func:`load_lora` — the LoRA weights alone (safetensors + JSON).
* :func:`plain_unet_state` / :func:`load_unet_weights` — the UNet's own weights without LoRA, saved beside a
  controller trained together with its UNet (``TrainConfig.unet_lr > 0``, a departure from the paper).

:mod:`remoco.controller` saves and loads a controller with these (``save_controller`` / ``load_controller``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "LORA_ADAPTER_NAME",
    "UNET_WEIGHTS",
    "lora_target_modules",
    "add_lora",
    "has_lora",
    "lora_parameters",
    "lora_config",
    "save_lora",
    "load_lora",
    "plain_unet_name",
    "plain_unet_state",
    "load_unet_weights",
]

LORA_ADAPTER_NAME = "remoco"
#: The file of a controller folder holding its UNet's own weights (joint training).
UNET_WEIGHTS = "unet_weights.safetensors"


_ATTENTION_RE = re.compile(
    r"(^|.*\.)attentions\.\d+\.(transformer_blocks|temporal_transformer_blocks)\.\d+\.attn\d+\.(to_q|to_k|to_v|to_out\.0)$"
)


def lora_target_modules(unet, targets: str = "attention") -> list[str]:
    """Names of the linear layers LoRA adapts: ``"attention"`` = to_q/to_k/to_v/to_out.0 of every attention in
    the spatial and temporal transformer blocks (the paper); ``"all_linear"`` = every nn.Linear of the UNet
    (the MotionPro release)."""
    if targets not in ("attention", "all_linear"):
        raise ValueError(f"targets must be 'attention' or 'all_linear', got {targets!r}")
    names = []
    for name, m in unet.named_modules():
        if not isinstance(m, nn.Linear) or "lora_" in name or name.endswith("base_layer"):
            continue
        if targets == "all_linear" or _ATTENTION_RE.match(name):
            names.append(name)
    return names


def add_lora(unet, rank: int = 32, targets: str = "attention", alpha: float | None = None,
             freeze_base: bool = True, adapter_name: str = LORA_ADAPTER_NAME, generator=None):
    """Inject LoRA layers ``W' = W + (alpha/rank) B A`` (Eq. 9) into ``unet`` in place with peft.

    ``B`` starts at zero, so the UNet's output is unchanged at initialisation. With ``freeze_base`` the
    pre-trained UNet weights are frozen and only the LoRA matrices are trainable. ``alpha`` defaults to
    ``rank`` (scale 1). ``generator`` (a ``torch.Generator``) draws ``A`` without touching the global RNG; None
    draws it from the global RNG, as peft does. Returns the list of adapted module names."""
    import contextlib

    from peft import LoraConfig, inject_adapter_in_model

    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")

    if int(rank) != rank or rank < 1:
        raise ValueError(f"rank must be a positive int, got {rank!r}")
    target = lora_target_modules(unet, targets)
    if has_lora(unet, adapter_name):
        raise ValueError(f"unet already has a LoRA adapter named {adapter_name!r}")
    if not target:
        raise ValueError(f"no linear layers match targets={targets!r} in this UNet")
    cfg = LoraConfig(r=int(rank), lora_alpha=float(rank if alpha is None else alpha), target_modules=target,
                     lora_dropout=0.0, bias="none", init_lora_weights=True)
    with contextlib.nullcontext() if generator is None else torch.random.fork_rng(devices=[]):
        if generator is not None:  # inside fork_rng: the global RNG is restored afterwards
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        inject_adapter_in_model(cfg, unet, adapter_name=adapter_name)
    if freeze_base:
        for n, p in unet.named_parameters():
            p.requires_grad_("lora_" in n and f".{adapter_name}." in n)
    unet._remoco_lora = dict(rank=int(rank), alpha=float(rank if alpha is None else alpha), targets=targets,
                             adapter_name=adapter_name, target_modules=target)
    return target


def has_lora(unet, adapter_name: str = LORA_ADAPTER_NAME) -> bool:
    return any(f"lora_A.{adapter_name}." in n for n, _ in unet.named_parameters())


def lora_parameters(unet, adapter_name: str = LORA_ADAPTER_NAME) -> list[nn.Parameter]:
    return [p for n, p in unet.named_parameters() if "lora_" in n and f".{adapter_name}." in n]


# ============================================================================ save / load
def lora_config(unet) -> dict | None:
    """The LoRA settings :func:`add_lora` recorded on ``unet`` (rank, alpha, targets, adapter_name,
    target_modules), or ``None`` when it carries no ReMoCo LoRA."""
    meta = getattr(unet, "_remoco_lora", None)
    return dict(meta) if meta else None


def save_lora(path, unet) -> bool:
    """Write ``unet``'s LoRA (Eq. 9) to the folder ``path``: ``lora.safetensors`` + ``lora_config.json``.
    Returns False (and writes nothing) when the UNet has no LoRA."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    if not has_lora(unet):
        return False
    meta = lora_config(unet)
    if not meta:
        raise ValueError("unet has LoRA layers that were not added by remoco.lora.add_lora")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    sd = get_peft_model_state_dict(unet, adapter_name=meta["adapter_name"])
    save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()}, str(path / "lora.safetensors"))
    (path / "lora_config.json").write_text(json.dumps(meta, indent=2))
    return True


def load_lora(path, unet) -> bool:
    """Add (if missing) and load the LoRA saved by :func:`save_lora` in the folder ``path`` into ``unet``,
    in place, at the UNet's device and dtype. Returns False when ``path`` holds no LoRA; weights that do
    not fit the UNet raise ``ValueError``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "lora_config.json").is_file():
        return False
    meta = json.loads((path / "lora_config.json").read_text())
    if not has_lora(unet, meta["adapter_name"]):
        add_lora(unet, rank=meta["rank"], targets=meta["targets"], alpha=meta["alpha"],
                 adapter_name=meta["adapter_name"])
    p = next(unet.parameters())
    sd = {k: v.to(p.dtype) for k, v in load_file(str(path / "lora.safetensors"), device=str(p.device)).items()}
    res = set_peft_model_state_dict(unet, sd, adapter_name=meta["adapter_name"])
    unexpected = getattr(res, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"LoRA weights in {path} do not fit this UNet: unexpected keys {unexpected[:3]}...")
    return True


def plain_unet_name(name: str) -> str | None:
    """The name a UNet state-dict entry has without LoRA: ``None`` for a LoRA tensor, else ``name`` with peft's
    ``base_layer`` renaming undone."""
    return None if "lora_" in name else name.replace(".base_layer.", ".")


def plain_unet_state(unet) -> dict:
    """``unet``'s state dict without LoRA tensors and with peft's ``base_layer`` renaming undone
    (:func:`plain_unet_name`): the names a UNet without LoRA has (the tensors are the UNet's own, not copies)."""
    return {plain_unet_name(n): p for n, p in unet.state_dict().items() if plain_unet_name(n) is not None}


def load_unet_weights(path, unet) -> bool:
    """Load the UNet weights a jointly trained controller saved (:func:`remoco.controller.save_controller`
    with ``unet_weights=True``) into ``unet`` in place; False when the folder ``path`` has none. Names or shapes
    that do not fit the UNet raise ``ValueError``."""
    from safetensors.torch import load_file

    f = Path(path) / UNET_WEIGHTS
    if not f.is_file():
        return False
    sd = load_file(str(f))
    own = plain_unet_state(unet)
    wrong = sorted(set(sd) ^ set(own)) + sorted(n for n in sd if n in own and sd[n].shape != own[n].shape)
    if wrong:
        raise ValueError(f"{f} does not fit this UNet: {len(wrong)} missing, unexpected or mis-shaped weights, "
                         f"e.g. {wrong[:3]}")
    with torch.no_grad():
        for n, p in own.items():
            p.copy_(sd[n].to(p.device, p.dtype))
    return True
