"""The photographs the synthetic clips' textures (:mod:`remoco.data`) are cut from, all loaded offline.

Which images the project's own packages ship (scikit-image's sample data, matplotlib's sample data), which of
them the bench and the evaluation clips use, which are held out of training, and how a random crop of one is
taken (resized photographs are cached, grey ones get a colour cast).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

__all__ = ["PHOTO_NAMES", "PHOTO_SOURCES", "ALL_PHOTOS", "HELD_OUT_PHOTOS", "TRAIN_PHOTOS", "PHOTO_SETS",
           "shows_held_out", "load_photo", "check_photos", "photo_scaled", "photo_crop", "sample_images", "tinted"]

#: Colour photographs shipped inside the scikit-image wheel (loaded offline, no pooch download): the photographs of
#: the bench sets (``data/bench``) and of the evaluation clips; the first training runs drew from these seven too.
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")

#: Every image that the project's own packages ship offline, ``{name: (package, item)}``: scikit-image's sample
#: photographs (colour and grey), two procedural textures of scikit-image (a colour wheel and a checkerboard) and
#: matplotlib's two sample photographs. scikit-learn's sample images would add two more, but scikit-learn is not
#: a dependency.
PHOTO_SOURCES = {
    **{n: ("skimage", n) for n in PHOTO_NAMES},
    **{n: ("skimage", n) for n in ("camera", "moon", "coins", "clock", "grass", "gravel", "brick", "cell")},
    **{n: ("skimage", n) for n in ("colorwheel", "checkerboard")},
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "blue_pack": ("matplotlib", "Minduka_Present_Blue_Pack.png"),
}
ALL_PHOTOS = tuple(PHOTO_SOURCES)
#: Photographs no training scene draws from (``photos="train"``): the drag demo's rocket and the astronaut stay
#: unseen, so a drag on them tests a model on a photograph it never trained on.
HELD_OUT_PHOTOS = ("rocket", "astronaut")
#: The training scenes' photographs at ``TrainConfig.photos="train"``: every packaged image but the held-out ones.
TRAIN_PHOTOS = tuple(n for n in ALL_PHOTOS if n not in HELD_OUT_PHOTOS)
#: ``TrainConfig.photos`` -> the photographs its scenes draw from (``"bench"``: the seven of the first runs).
PHOTO_SETS = {"bench": PHOTO_NAMES, "train": TRAIN_PHOTOS}


def shows_held_out(photographs) -> bool:
    """Is any of ``photographs`` (a clip's ``meta["photographs"]``) one that training holds out
    (:data:`HELD_OUT_PHOTOS`)?"""
    return bool(set(photographs) & set(HELD_OUT_PHOTOS))

@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 image of :data:`PHOTO_SOURCES` (grey images repeated to three channels, alpha dropped
    over white)."""
    if name not in PHOTO_SOURCES:
        raise ValueError(f"name must be one of {ALL_PHOTOS}, got {name!r}")
    package, item = PHOTO_SOURCES[name]
    if package == "skimage":
        import skimage.data

        img = np.asarray(getattr(skimage.data, item)())
    else:
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data(item, asfileobj=False)) as im:
            img = np.asarray(im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB"))
    img = img.astype(np.float32)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        a = img[..., 3:] / 255.0
        img = img[..., :3] * a + 255.0 * (1 - a)
    return np.ascontiguousarray(np.round(img[..., :3]).astype(np.uint8))


@functools.lru_cache(maxsize=None)
def _is_grey(name: str) -> bool:
    """Is the photograph grey (three equal channels)? Asked once per crop while clips are drawn, so cached."""
    img = load_photo(name)
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())


def check_photos(photos) -> tuple:
    photos = PHOTO_NAMES if photos is None else tuple(photos)
    bad = [n for n in photos if n not in PHOTO_SOURCES]
    if not photos or bad:
        raise ValueError(f"photos must be None or a non-empty sequence of names from {ALL_PHOTOS}, got {photos!r}")
    return photos


_SCALED_CACHE: "dict[tuple[str, int], np.ndarray]" = {}
_SCALED_CACHE_BYTES = 256 * 2**20  # resized photos kept in memory (uint8), oldest dropped first


def photo_scaled(name: str, short_side: int) -> np.ndarray:
    """Photo resized so that its short side is ``short_side`` (uint8, read-only, cached)."""
    key = (name, int(short_side))
    out = _SCALED_CACHE.get(key)
    if out is not None:
        return out
    img = load_photo(name)
    h, w = img.shape[:2]
    s = short_side / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    out = cv2.resize(img, size, interpolation=interp)
    out.setflags(write=False)
    _SCALED_CACHE[key] = out
    while sum(v.nbytes for v in _SCALED_CACHE.values()) > _SCALED_CACHE_BYTES and len(_SCALED_CACHE) > 1:
        _SCALED_CACHE.pop(next(iter(_SCALED_CACHE)))
    return out


def sample_images(names=None) -> dict:
    """Reference photographs for the book / demo: ``{name: (H, W, 3) uint8 numpy array}``.

    These are scikit-image's bundled sample images (astronaut, coffee, chelsea, rocket, ...),
    available offline.
    """
    names = check_photos(names)
    return {n: load_photo(n).copy() for n in names}


def photo_crop(rng: np.random.Generator, name: str, h: int, w: int) -> np.ndarray:
    """A random (h, w, 3) float32 crop of a photo, at a scale where the crop covers 40-80 % of it."""
    frac = rng.uniform(0.4, 0.8)
    short = max(max(h, w) / frac, h, w)
    # quantise the scale to quarter octaves so that the resized photos are cached and reused
    short = int(math.ceil(2.0 ** (math.ceil(math.log2(short) * 4) / 4)))
    img = photo_scaled(name, short)
    y0 = int(rng.integers(0, img.shape[0] - h + 1))
    x0 = int(rng.integers(0, img.shape[1] - w + 1))
    crop = img[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
    # a grey image gets a random colour cast (the seven colour photographs draw nothing more: same clips as before)
    return tinted(rng, crop, strength=0.35) if _is_grey(name) else crop


def tinted(rng: np.random.Generator, tex: np.ndarray, strength: float = 0.45) -> np.ndarray:
    """Blend a texture with a random saturated colour so objects stand out from the background."""
    hue = rng.uniform(0, 1)
    rgb = np.array([abs(hue * 6 - 3) - 1, 2 - abs(hue * 6 - 2), 2 - abs(hue * 6 - 4)])
    rgb = np.clip(rgb, 0, 1) * 255.0
    return (tex * (1 - strength) + rgb.astype(np.float32) * strength).astype(np.float32)
