"""How a run uses the machine it is on: bf16 where the processor computes it natively, fp32 elsewhere.

``TrainConfig.mixed_precision="auto"`` (the toy preset's) asks :func:`resolve_mixed_precision` at the start of a
run: bf16 autocast on a CUDA GPU that supports it, and on a CPU whose instruction set multiplies bf16 natively
(AVX-512 BF16 or AMX, read from the processor's flags), fp32 everywhere else (on a CPU without those
instructions bf16 is emulated and slower than fp32). The choice is written into the run's provenance
(:func:`remoco.runs.provenance`) next to the thread count, and :func:`autocast_module` applies the same rule to
sampling. Weights and optimizer state stay fp32 in every case (autocast casts per operation), so a checkpoint is
the same file whatever the machine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform

import torch

__all__ = ["PRECISIONS", "PRECISION_ENV", "FP32_STAGES", "cpu_flags", "cpu_model", "cpu_bf16_native",
           "resolve_mixed_precision", "stage_precision", "autocast_module", "sampler_autocast", "machine_summary"]

#: What ``mixed_precision`` may ask for: accelerate's values plus "auto".
PRECISIONS = ("no", "fp16", "bf16", "auto")


@functools.lru_cache(maxsize=1)
def _cpuinfo(field: str) -> str | None:
    """The value of the first line of Linux ``/proc/cpuinfo`` that starts with ``field``; None where there is no
    such line or the file cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> frozenset:
    """The processor's feature flags (Linux ``/proc/cpuinfo``; empty where it cannot be read)."""
    flags = _cpuinfo("flags")
    return frozenset(flags.split()) if flags is not None else frozenset()


def cpu_bf16_native(flags=None) -> bool:
    """Does this CPU multiply bf16 natively (AVX-512 BF16 or AMX-BF16), with oneDNN available to use it?"""
    flags = cpu_flags() if flags is None else frozenset(flags)
    native = bool({"avx512_bf16", "amx_bf16"} & flags)
    return native and torch.backends.mkldnn.is_available()


#: The environment variable that decides what ``"auto"`` means on this machine ("no" or "bf16"), e.g.
#: ``REMOCO_PRECISION=no`` to reproduce on a bf16 machine what a machine without it computes.
PRECISION_ENV = "REMOCO_PRECISION"


def resolve_mixed_precision(requested: str, device=None, flags=None) -> str:
    """The precision a run uses: ``requested`` unless it is ``"auto"``, which becomes ``"bf16"`` on a CUDA device
    with bf16 support or a CPU with native bf16 (:func:`cpu_bf16_native`), else ``"no"`` (fp32) — or what the
    environment variable :data:`PRECISION_ENV` says. ``fp16`` on a CPU is refused (no fp16 autocast there)."""
    if requested not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {requested!r}")
    dev = torch.device("cpu" if device is None else device)
    forced = os.environ.get(PRECISION_ENV)
    if requested == "auto" and forced:
        if forced not in ("no", "bf16"):
            raise ValueError(f"{PRECISION_ENV} must be 'no' or 'bf16', got {forced!r}")
        return forced
    if requested == "auto":
        if dev.type == "cuda":
            return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
        return "bf16" if cpu_bf16_native(flags) else "no"
    if requested == "fp16" and dev.type == "cpu":
        raise ValueError("mixed_precision='fp16' needs a GPU: use 'bf16', 'auto' or 'no' on a CPU")
    return requested


#: Training stages where "auto" stays fp32. Measured on an AMX CPU: the toy VAE on its 32-px crops runs slower under
#: bf16 autocast (0.26 s against 0.20 s per step at 2 threads), the denoiser stages faster (1.4-1.7x); a wider toy VAE
#: on full 64-px frames (32/64/64, chapter 1's sweep) ran faster under it (1.3 s against 1.9 s per step, one thread,
#: two other runs on the machine), so this list is a measurement of the preset's recipe, not a rule.
FP32_STAGES: tuple = ("vae",)


def stage_precision(requested: str, stage: str | None, device=None) -> str:
    """:func:`resolve_mixed_precision` for a training ``stage``: ``"auto"`` keeps the :data:`FP32_STAGES` in fp32."""
    if requested == "auto" and stage in FP32_STAGES:
        return "no"
    return resolve_mixed_precision(requested, device)


@contextlib.contextmanager
def autocast_module(module: torch.nn.Module, precision: str = "auto", output_dtype: torch.dtype | None = None):
    """``with autocast_module(pipe.unet, "auto"): pipe(...)`` — run ``module``'s forward under ``torch.autocast``
    with :func:`resolve_mixed_precision`'s choice for its device (nothing for fp32), and only that module: the
    rest of a pipeline (image preprocessing, the scheduler, the VAE) stays fp32. Yields the precision used.

    ``output_dtype``: cast the forward's floating tensor outputs (a tensor, a tuple of them or a diffusers output's
    ``sample``) to this dtype. SVD's pipeline needs it when it samples without classifier-free guidance: its
    scheduler casts each step's latents to the UNet output's dtype, so bf16 outputs would leave the latents, and
    then the fp32 VAE's input, in bf16 (with guidance, the guidance sum already returns fp32)."""
    p = next(module.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    chosen = resolve_mixed_precision(precision, device)
    if chosen == "no":
        yield chosen
        return
    dtype = torch.bfloat16 if chosen == "bf16" else torch.float16
    had_own = "forward" in vars(module)  # a forward set on the instance before us (e.g. by accelerate)
    original = module.forward
    fast = torch.autocast(device.type, dtype=dtype)(original)
    if output_dtype is None:
        module.forward = fast
    else:
        def cast(x):
            return x.to(output_dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x

        def forward(*args, **kwargs):
            out = fast(*args, **kwargs)
            if isinstance(out, tuple):
                return tuple(cast(x) for x in out)
            if hasattr(out, "sample"):
                out.sample = cast(out.sample)
                return out
            return cast(out)

        module.forward = forward
    try:
        yield chosen
    finally:
        if had_own:
            module.forward = original
        else:
            del module.forward  # the class's forward is back


def sampler_autocast(unet, precision: str = "auto", call_kwargs: dict | None = None):
    """The precision rule of every sampler here (:func:`remoco.sampling.sample_videos`,
    :func:`remoco.restart.restarted_videos`): the UNet alone under :func:`autocast_module`, its outputs cast back
    to fp32 when SVD's pipeline samples without classifier-free guidance (``call_kwargs``, the pipeline call's
    keyword arguments, set ``max_guidance_scale <= 1``; SVD's default is 3.0; see ``output_dtype`` there); a pipeline
    without a torch UNet runs as it is."""
    if not isinstance(unet, torch.nn.Module):
        return contextlib.nullcontext()
    no_cfg = float((call_kwargs or {}).get("max_guidance_scale", 3.0)) <= 1
    return autocast_module(unet, precision, output_dtype=torch.float32 if no_cfg else None)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else the processor string of :mod:`platform`."""
    model = _cpuinfo("model name")
    return model if model is not None else platform.processor() or platform.machine()


def machine_summary() -> dict:
    """What a run records about the machine: processor, CPU model, threads, bf16 support."""
    return {"processor": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cpu_bf16_native": cpu_bf16_native(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
