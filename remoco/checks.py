"""Argument checks shared by the condition modules: each raises ``ValueError`` naming the argument and
what was expected (nothing is clipped or guessed)."""

from __future__ import annotations

import torch

__all__ = ["check_int", "check_flow", "check_bool_mask", "check_visibility", "check_k", "check_selection", "check_r"]


def check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def check_flow(flow, name="flow", finite=True):
    if not isinstance(flow, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (L, H, W, 2), got {type(flow).__name__}")
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (L, H, W, 2), got {tuple(flow.shape)}")
    if not flow.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {flow.dtype}")
    if min(flow.shape[:3]) < 1:
        raise ValueError(f"{name} must have at least one frame, row and column, got shape {tuple(flow.shape)}")
    # fast path: the sum of a finite tensor is finite unless it overflows; only then look closer
    if finite and flow.numel() and not bool(torch.isfinite(flow.sum())) and not bool(torch.isfinite(flow).all()):
        raise ValueError(f"{name} contains NaN or inf values")


def check_bool_mask(mask, name: str, dims: str) -> None:
    """``mask`` must be a bool tensor with as many dimensions as ``dims`` names (e.g. ``"(L, H, W)"``)."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a bool torch.Tensor of shape {dims}, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must have dtype torch.bool, got {mask.dtype}")
    if mask.ndim != dims.count(",") + 1:
        raise ValueError(f"{name} must have shape {dims}, got {tuple(mask.shape)}")


def check_visibility(visibility, shape=None, name="visibility"):
    check_bool_mask(visibility, name, "(L, H, W)")
    if shape is not None and tuple(visibility.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(visibility.shape)} but flow implies (L, H, W) = {tuple(shape)}")


def check_k(k, height, width):
    check_int("k", k)
    if height % k or width % k:
        raise ValueError(f"k={k} must divide the image size (H, W) = ({height}, {width})")


def check_selection(selection, height, width, k):
    if not isinstance(selection, torch.Tensor):
        raise ValueError(f"selection must be a bool torch.Tensor of shape (H//k, W//k), got {type(selection).__name__}")
    if selection.dtype != torch.bool:
        raise ValueError(f"selection must have dtype torch.bool, got {selection.dtype}")
    expected = (height // k, width // k)
    if tuple(selection.shape) != expected:
        raise ValueError(f"selection must have shape (H//k, W//k) = {expected}, got {tuple(selection.shape)}")


def check_r(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
