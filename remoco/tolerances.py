"""How close must a re-run come to its stored value? One table for the book's chapters and for ``make reproduce``.

A number that comes out of sampling a video, training, a point tracker or an optical-flow estimator differs in
its last printed digit between CPUs (kernel selection, thread partitioning and so float reduction order), so it
is checked against its stored value within a **tolerance per quantity** (:data:`QUANTITIES`): it passes when

    |fresh - stored| <= atol + rtol * |stored| + one unit of the last printed digit

(two values that differ by a hair can round to neighbouring printed values; a number printed as ``5.0`` has a
unit of 0.1). Everything else — seeded synthetic data, conditions from exact flow, shapes, counts, settings,
tables read from stored results — is ``"exact"``: the printed text must be the same.

Which quantity a chapter's number is: :data:`CHAPTER_QUANTITIES` maps the names of its glued values
(``glue:<name>``) and the column headers of its checked tables (``column:<header>``) to quantities, by
``fnmatch`` pattern, first match wins; anything unmatched is exact. :mod:`remoco.book_check` applies it to
re-executed chapters, :func:`remoco.reproduce.check_results` to the stored results of ``make reproduce``
(:data:`RESULT_METRICS`).

``python -m remoco.tolerances`` prints the table as Markdown (the book's "Reproducing" page carries it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

__all__ = ["Tolerance", "QUANTITIES", "RESULT_METRICS", "CHAPTER_QUANTITIES", "quantity_of", "tolerance_for",
           "printed_numbers", "number_value", "printed_unit", "compare_number", "compare_text", "markdown_table",
           "main"]


@dataclass(frozen=True)
class Tolerance:
    """``|fresh - stored| <= atol + rtol * |stored|`` (plus the printed unit, see :func:`compare_number`);
    ``compared=False``: a machine-dependent figure (wall time), shown by the book but never compared."""

    what: str
    atol: float = 0.0
    rtol: float = 0.0
    why: str = ""
    compared: bool = True

    def __post_init__(self):
        if self.atol < 0 or self.rtol < 0 or not (math.isfinite(self.atol) and math.isfinite(self.rtol)):
            raise ValueError(f"atol and rtol must be finite and >= 0, got {self.atol}, {self.rtol}")

    @property
    def exact(self) -> bool:
        return self.compared and self.atol == 0 and self.rtol == 0

    def bound(self, stored: float, unit: float = 0.0) -> float:
        """The largest accepted ``|fresh - stored|`` for a stored value printed with resolution ``unit``."""
        return self.atol + self.rtol * abs(stored) + unit

    def describe(self) -> str:
        if not self.compared:
            return "not compared"
        if self.exact:
            return "exact"
        parts = ([f"± {self.atol:.3g}"] if self.atol else []) + ([f"± {100 * self.rtol:.3g} %"] if self.rtol else [])
        return " + ".join(parts)


#: KID / KVD: an absolute part of their tolerance. Their values on the bench lie near 0 (every generated clip starts
#: from its real clip's frame; known-answer sets scored -0.06 to -0.03), where a relative tolerance alone would
#: ask for digits the estimate does not have.
KERNEL_DISTANCE_ATOL = 0.05


#: The tolerance table. Chapter quantities were sized on the spread measured between executions of the book
#: (``results/chapter_drift.json``, written by ``python -m remoco.book_check drift``): at 1 and 2 threads on one
#: processor, and on two processors (a 2-core Intel Xeon and a 2-core AMD EPYC, both with native bf16). Each bound
#: (with its printed unit) is at least 1.5x the largest difference seen between them. The file also records the
#: float32 sampler against the bf16 one (``REMOCO_PRECISION=no``): a different computation, which the bounds are not
#: sized for. Result metrics are sized on the spread of a full ``make reproduce`` re-run.
QUANTITIES: dict[str, Tolerance] = {
    "exact": Tolerance("seeded synthetic data, conditions from exact flow, shapes, counts, settings, stored "
                       "results and logs read back", why="no floating-point reduction whose order can change"),
    "flow_epe_px": Tolerance("mean end-point error of an OpenCV flow estimate (px)", atol=0.02, rtol=0.02,
                             why="OpenCV's SIMD kernels differ between CPUs"),
    "flow_share": Tolerance("precision, recall or share of pixels from an OpenCV flow estimate (fraction or %)",
                            atol=0.02, why="a few pixels near motion boundaries flip"),
    "unet_output": Tolerance("the largest absolute difference between two UNet outputs", rtol=0.01,
                             why="float32 convolutions: reduction order follows the thread count"),
    "video_distance_px": Tolerance("distance of a tracked point to the drawn path, mean over a set of sampled "
                                   "videos (px)", atol=0.2, rtol=0.06,
                                   why="sampler steps amplify last-bit differences of the UNet, and the tracker can "
                                       "jump on a clip whose video changed a little (Intel Xeon against AMD EPYC: "
                                       "0.8 px of 21.2)"),
    "video_distance_gap_px": Tolerance("paired difference of two systems' mean distances to the drawn path, and the "
                                       "ends of its interval (px)", atol=0.6, rtol=0.1,
                                       why="the two means' changes add, and a difference near 0 has no relative "
                                           "margin (Intel Xeon against AMD EPYC: 0.56 px of 2.32)"),
    "video_distance_se_px": Tolerance("standard error of that mean (px)", atol=0.1, rtol=0.15,
                                      why="as the distance (Intel Xeon against AMD EPYC: 0.12 of 0.68)"),
    "video_distance_ratio": Tolerance("ratio of two such means", atol=0.06, rtol=0.05,
                                      why="as the distance (Intel Xeon against AMD EPYC: 0.06 of 0.60)"),
    "clips_closer_pct": Tolerance("share of clips on which one system is closer than another (%)", atol=500 / 24,
                                  why="clips whose two distances lie within a tracker's jump change sides: three of "
                                      "24 between an Intel Xeon and an AMD EPYC; five are allowed"),
    "seeds_closer": Tolerance("number of generator seeds (of four) on which one system ends closer to the drawn path "
                              "than another", atol=1.0,
                              why="one seed's two distances can lie within a tracker's jump of each other"),
    "clips_found_pct": Tolerance("share of sampled videos whose object the appearance metric finds (anywhere, or at "
                                 "the drag's end), or its paired difference between two systems (%)", atol=200 / 24,
                                 why="found is a threshold on an NCC score: a last-digit change can flip a clip "
                                     "near it; two clips of 24"),
    "object_motion_px": Tolerance("displacement of an object in sampled videos, OpenCV flow (px)", atol=0.2,
                                  rtol=0.04, why="as the distance"),
    "object_motion_pct": Tolerance("that displacement as a share of the data's (%)", atol=2.0, rtol=0.04,
                                   why="as the distance"),
    "object_look_px": Tolerance("displacement of an object found again by its appearance in sampled videos, mean "
                                "over clips, none where not found (px)", atol=2.0, rtol=0.04,
                                why="a clip whose object is found or lost at the NCC threshold adds or removes its "
                                    "whole displacement: one clip of 12"),
    "loss_change_pct": Tolerance("change of the held-out denoising loss against no condition (%)", atol=0.3,
                                 rtol=0.02, why="float32 UNet forward passes"),
    "single_video_px": Tolerance("distance of one sampled video's tracked point to the drawn path (px)",
                                 atol=1.0, rtol=0.4,
                                 why="one video: no averaging over clips damps a tracker's jump (Intel Xeon against "
                                     "AMD EPYC: 4.2 px of 14.8 on one seed of four)"),
    "grey_levels": Tolerance("mean absolute difference of two videos (grey levels)", atol=0.3, rtol=0.05,
                             why="one sampled video against an H.264 recording"),
    "vae_psnr_db": Tolerance("PSNR or lowest PSNR of VAE reconstructions over a set of clips (dB)", atol=0.05,
                             why="float32 convolutions: reduction order follows the thread count"),
    "ssim": Tolerance("SSIM of VAE reconstructions, mean over a set of clips", atol=0.002, why="as the PSNR"),
    "generated_psnr_db": Tolerance("PSNR of a sampled video's first frame to its conditioning image, mean over "
                                   "clips (dB)", atol=0.3, rtol=0.02,
                                   why="sampler steps amplify last-bit differences of the UNet"),
    "object_colour_levels": Tolerance("shift of an object's mean colour from the first to the last frame, followed "
                                      "by OpenCV flow, mean over clips (grey levels)", atol=1.0, rtol=0.1,
                                      why="sampled videos and OpenCV's flow both move a little between CPUs"),
    "known_answer_share": Tolerance("share of the way an OpenCV tracker reads on known-answer videos, mean over "
                                    "entries", atol=0.02, why="OpenCV's SIMD kernels differ between CPUs"),
    "wall_time": Tolerance("wall-clock or CPU time, throughput", compared=False,
                           why="depends on the machine and its load"),
    # make reproduce: row means over training seeds of a full re-run (training + evaluation), 100-entry sets
    "MD-Vid": Tolerance("MD-Vid of a results row (px)", atol=0.5, why="about one standard error of the mean"),
    "MD-Img": Tolerance("MD-Img of a results row (px)", atol=0.5, why="about one standard error of the mean"),
    "Frame Consis.": Tolerance("frame consistency of a results row", atol=0.005, why="spread over seeds"),
    "Avg. flow magnitude": Tolerance("average flow magnitude of a results row (px)", atol=0.25, rtol=0.05,
                                     why="spread over seeds"),
    "FID": Tolerance("FID of a results row", rtol=0.1, why="few samples: the estimate itself is noisy"),
    "FVD": Tolerance("FVD of a results row", rtol=0.1, why="few samples: the estimate itself is noisy"),
    "KID": Tolerance("KID of a results row", atol=KERNEL_DISTANCE_ATOL, rtol=0.1,
                     why="unbiased, so near 0 it can change sign; few samples"),
    "KVD": Tolerance("KVD of a results row", atol=KERNEL_DISTANCE_ATOL, rtol=0.1,
                     why="unbiased, so near 0 it can change sign; few samples"),
}

#: The metrics of ``make reproduce``'s results, each its own quantity of :data:`QUANTITIES`.
RESULT_METRICS = ("MD-Vid", "MD-Img", "Frame Consis.", "Avg. flow magnitude", "FID", "FVD", "KID", "KVD")

#: Chapter (notebook stem) -> ``{pattern: quantity}``; patterns are ``glue:<glued name>`` or
#: ``column:<table column header>`` (``fnmatch``, case-sensitive, first match wins); unmatched: ``"exact"``.
CHAPTER_QUANTITIES: dict[str, dict[str, str]] = {
    "01_svd_preliminaries": {
        "glue:vae_psnr_*": "vae_psnr_db",
        "column:*PSNR (dB)": "vae_psnr_db",
        "glue:vae_ssim_*": "ssim",
        "column:SSIM": "ssim",
        "glue:ff_psnr": "generated_psnr_db",
        "glue:colour_shift_*": "object_colour_levels",
    },
    "02_flow_and_visibility": {
        "glue:*_fps": "wall_time",
        "column:frames / CPU-s": "wall_time",
        "glue:*_epe_*": "flow_epe_px",
        "column:EPE*": "flow_epe_px",
        "glue:hybrid_occ_*": "flow_share",
        "glue:false_alarm_off_pct": "flow_share",
        "column:occluded *": "flow_share",
    },
    "03_region_trajectory_and_motion_mask": {},
    "04_motion_encoder_and_modulation": {
        "glue:zero_init_min_perturbed": "unet_output",
        "column:max |diff| perturbed": "unet_output",
    },
    "05_lora_training": {
        "glue:d_gap_*": "video_distance_gap_px",
        "glue:d_*": "video_distance_px",
        "column:mean distance (px)": "video_distance_px",
        "glue:se_*": "video_distance_se_px",
        "column:standard error": "video_distance_se_px",
        "glue:ratio_*": "video_distance_ratio",
        "column:ratio to *": "video_distance_ratio",
        "glue:closer_*": "clips_closer_pct",
        "column:closer than *": "clips_closer_pct",
        "glue:motion_ratio*": "object_motion_pct",
        "glue:motion_*": "object_motion_px",
        "column:object displacement*": "object_motion_px",
        "glue:*_hi": "loss_change_pct",
        "column:*vs none (%)": "loss_change_pct",
        "column:trajectory only lower on (%)": "clips_closer_pct",
        "glue:chapter_minutes": "wall_time",
        "glue:arrive_*": "clips_found_pct",
        "glue:found_*": "clips_found_pct",
        "column:*object found (%)": "clips_found_pct",
        "column:found at the drag's end (%)": "clips_found_pct",
        "column:at the end vs *": "clips_found_pct",
        "column:distance to the drag's end*": "video_distance_px",
        "glue:check_base": "object_motion_pct",
        "glue:check_base_look": "clips_found_pct",
        "glue:check_flicker": "object_motion_pct",
        "glue:check_recolour": "object_motion_pct",
        "glue:check_frozen": "object_motion_px",
        "column:flow (% of the real clip)": "object_motion_pct",
        "column:flow (px)": "object_motion_px",
        "column:appearance (% of the real clip)": "clips_found_pct",
        "column:appearance (px)": "object_look_px",
    },
    "06_evaluation": {
        "glue:live_dis_*": "known_answer_share",
        "column:DIS flow*": "known_answer_share",
        "column:LK*": "known_answer_share",
        "column:NCC*": "known_answer_share",
    },
    "07_ablations": {},
    "08_drag_demo": {
        "glue:rerun_diff": "grey_levels",
        "glue:*_remoco": "video_distance_px",
        "glue:*_base": "video_distance_px",
        "glue:rocket_seeds": "single_video_px",
        "glue:*_closer": "seeds_closer",
        "column:seed *": "single_video_px",
        "column:mean (px)": "video_distance_px",
        "glue:animate_seconds": "wall_time",
    },
}

_ANY_CHAPTER = {"glue:threads": "wall_time"}  # the thread count a chapter ran with: recorded, not compared


def quantity_of(chapter: str, key: str) -> str:
    """The quantity of ``key`` (``glue:<name>`` or ``column:<header>``) in ``chapter`` (a notebook stem)."""
    if not key.startswith(("glue:", "column:")):
        raise ValueError(f"key must start with 'glue:' or 'column:', got {key!r}")
    for pattern, quantity in {**_ANY_CHAPTER, **CHAPTER_QUANTITIES.get(chapter, {})}.items():
        if fnmatchcase(key, pattern):
            return quantity
    return "exact"


def tolerance_for(chapter: str, key: str) -> Tolerance:
    return QUANTITIES[quantity_of(chapter, key)]


# a printed number: sign, digits with thousands commas, decimals, exponent (U+2212 is a typographic minus)
_NUMBER = re.compile(r"[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def printed_numbers(text: str) -> list[str]:
    """The printed numbers in ``text``, in order (``"8.65 ± 0.74, 1,800 steps"`` -> ``["8.65", "0.74", "1,800"]``)."""
    return _NUMBER.findall(text)


def number_value(token: str) -> float:
    """The value of a printed number (thousands commas and a typographic minus allowed)."""
    if not _NUMBER.fullmatch(token):
        raise ValueError(f"token must be a printed number, got {token!r}")
    return float(token.replace(",", "").replace("\u2212", "-"))


def printed_unit(token: str) -> float:
    """One unit of the last printed digit of the number ``token`` (``"5.0"`` -> 0.1, ``"1,800"`` -> 1,
    ``"5.9e-08"`` -> 1e-09)."""
    if not _NUMBER.fullmatch(token):
        raise ValueError(f"token must be a printed number, got {token!r}")
    mantissa, _, exp = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (-decimals + (int(exp) if exp else 0))


def compare_number(stored: str, fresh: str, tol: Tolerance) -> tuple[bool, str]:
    """Is the printed number ``fresh`` within ``tol`` of the printed ``stored``? Returns ``(ok, detail)``."""
    if not tol.compared:
        return True, f"{stored} -> {fresh} (not compared: {tol.what})"
    if tol.exact:
        return stored == fresh, f"{stored} -> {fresh} (exact)"
    s, f = number_value(stored), number_value(fresh)
    bound = tol.bound(s, max(printed_unit(stored), printed_unit(fresh)))
    diff = abs(f - s)
    ok = diff <= bound + 1e-12 * max(1.0, abs(s))
    return ok, f"{stored} -> {fresh}: |diff| {diff:.4g} {'<=' if ok else '>'} {bound:.4g} ({tol.describe()})"


def compare_text(stored: str, fresh: str, tol: Tolerance) -> tuple[bool, str]:
    """Compare two printed texts: the words must be equal and each number within ``tol`` of its stored value
    (``tol`` exact: the texts must be equal). Returns ``(ok, detail)``."""
    if not tol.compared:
        return True, f"not compared ({tol.what})"
    if tol.exact or stored == fresh:
        return stored == fresh, "equal" if stored == fresh else f"{stored!r} -> {fresh!r} (exact)"
    s_words, f_words = _NUMBER.split(stored), _NUMBER.split(fresh)
    if s_words != f_words:
        return False, f"{stored!r} -> {fresh!r}: the text around the numbers differs"
    details, ok = [], True
    for s, f in zip(printed_numbers(stored), printed_numbers(fresh)):
        good, detail = compare_number(s, f, tol)
        ok &= good
        if s != f:
            details.append(detail)
    return ok, "; ".join(details) or "equal"


def markdown_table() -> str:
    """:data:`QUANTITIES` as a Markdown table (quantity, tolerance, why)."""
    lines = ["| quantity | tolerance (plus one printed unit) | why |", "|---|---|---|"]
    for name, t in QUANTITIES.items():
        lines.append(f"| `{name}`: {t.what} | {t.describe()} | {t.why} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    print(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
