"""Procedural video clips with exact optical flow and visibility (ground truth for Eq. 4).

The paper trains on WebVid-10M and labels each clip with DOT (Eq. 4: ``f^i, M^i = DOT(x^1, x^i)``).
No video data set is reachable here, so this module *renders* clips whose flow maps ``f^i`` and
visibility masks ``M^i`` are known exactly. A clip is a stack of layers (a background photograph and
textured objects, optionally with a part attached to an object); each layer ``l`` carries one affine
map per frame ``T_{l,i}`` from its local texture coordinates to image coordinates of frame ``i``.
Frame ``i`` is rendered by backward warping every layer with ``T_{l,i}^{-1}`` and compositing them
back to front. For a frame-1 pixel ``p`` owned by layer ``l`` (the top-most opaque layer there):

* flow (Eq. 4):        ``f^i(p) = T_{l,i} T_{l,1}^{-1} p - p``   (exact, closed form);
* visibility (Eq. 4):  ``M^i(p) = 1`` iff ``q = p + f^i(p)`` lies inside frame ``i`` and no layer in
  front of ``l`` covers ``q`` in frame ``i``.

Textures are real photographs shipped inside the installed packages (:mod:`remoco.photos`, no download).
Everything is seeded: the same ``seed`` gives bit-identical tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from .photos import (
    ALL_PHOTOS,
    HELD_OUT_PHOTOS,
    PHOTO_NAMES,
    PHOTO_SETS,
    PHOTO_SOURCES,
    TRAIN_PHOTOS,
    check_photos,
    load_photo,
    photo_crop,
    photo_scaled,
    sample_images,
    tinted,
)

__all__ = [
    "KINDS",
    "clip_seed",
    "PHOTO_NAMES",
    "ALL_PHOTOS",
    "HELD_OUT_PHOTOS",
    "TRAIN_PHOTOS",
    "PHOTO_SETS",
    "SyntheticClip",
    "SyntheticClipDataset",
    "make_clip",
    "photo_clip",
    "sample_images",
    "render_layers",
]

#: Clip kinds produced by :func:`make_clip` (``kind=None`` draws one of them).
KINDS = ("object", "camera", "part", "occlusion", "exit")
#: Probabilities of the kinds when ``kind=None``: mostly static-camera object motion (what the
#: drag demo asks for), then the others.
_KIND_WEIGHTS = (0.35, 0.15, 0.2, 0.15, 0.15)



@dataclass
class SyntheticClip:
    """One rendered clip with exact ground truth.

    Attributes
    ----------
    video : (L, H, W, 3) uint8 tensor, the clip ``x_0``.
    flow : (L, H, W, 2) float32 tensor, ``f^i`` of Eq. 4: displacement (x, y) in pixels of each
        frame-1 pixel to frame ``i``; ``flow[0]`` is zero.
    visibility : (L, H, W) bool tensor, ``M^i`` of Eq. 4: the frame-1 pixel is visible in frame ``i``.
    object_mask : (H, W) bool tensor, frame-1 pixels owned by a thing that moves in the world
        (an object or a part; not the background, even when the camera moves).
    kind : str, one of :data:`KINDS` (or ``"photo-part"`` / ``"photo-camera"`` for :func:`photo_clip`).
    meta : dict with ``seed``, ``owner`` ((H, W) int layer index of each frame-1 pixel, 0 = background),
        ``layers`` (names), ``photographs`` (the photograph each layer's texture was cut from, in the order of
        ``layers``), ``camera`` (bool) and the motion parameters.
    """

    video: torch.Tensor
    flow: torch.Tensor
    visibility: torch.Tensor
    object_mask: torch.Tensor
    kind: str
    meta: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "video": self.video,
            "flow": self.flow,
            "visibility": self.visibility,
            "object_mask": self.object_mask,
            "kind": self.kind,
        }


# --------------------------------------------------------------------------------------------
# affine helpers (2x3 matrices acting on (x, y))
# --------------------------------------------------------------------------------------------


def _mul(*ms: np.ndarray) -> np.ndarray:
    out = ms[0]
    for m in ms[1:]:  # (A B)(x) = A(B(x)) for 2x3 affine maps
        out = np.concatenate([out[:, :2] @ m[:, :2], out[:, :2] @ m[:, 2:] + out[:, 2:]], axis=1)
    return out


def _inv(m: np.ndarray) -> np.ndarray:
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * m[0, 2] + ib * m[1, 2])], [ic, id_, -(ic * m[0, 2] + id_ * m[1, 2])]])


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty]])


def _rot_scale(theta: float, s: float) -> np.ndarray:
    c, si = math.cos(theta) * s, math.sin(theta) * s
    return np.array([[c, -si, 0.0], [si, c, 0.0]])


def _apply(m: np.ndarray, x: np.ndarray, y: np.ndarray):
    return m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]


# --------------------------------------------------------------------------------------------
# layers and rendering
# --------------------------------------------------------------------------------------------


@dataclass
class _Layer:
    name: str
    tex: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    T: np.ndarray  # (L, 2, 3) local -> image coords of frame i
    moving: bool  # moves in the world (counts for object_mask)
    photo: str  # the photograph its texture was cut from (a key of PHOTO_SOURCES)


def _shape_alpha(rng: np.random.Generator, h: int, w: int, shape: str | None = None) -> np.ndarray:
    """Binary silhouette (ellipse / rounded box / superellipse) inside an (h, w) local grid with a
    one-pixel empty border so that bilinear warping gives soft edges."""
    shape = shape or ("ellipse", "box", "blob")[int(rng.integers(0, 3))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx - (w - 1) / 2) / max((w - 2) / 2, 1)
    v = (yy - (h - 1) / 2) / max((h - 2) / 2, 1)
    p = {"ellipse": 2.0, "box": 8.0, "blob": 1.4}[shape]
    return (np.abs(u) ** p + np.abs(v) ** p <= 1.0).astype(np.float32)


def render_layers(layers: list, height: int, width: int):
    """Render layers (index 0 = background, back to front) and their exact flow / visibility.

    Returns numpy arrays ``video (L,H,W,3) uint8, flow (L,H,W,2) float32, visibility (L,H,W) bool,
    owner (H,W) int`` where ``owner`` is the layer index of each frame-1 pixel.
    Flow and visibility follow the closed forms of the module docstring (Eq. 4).
    """
    L = layers[0].T.shape[0]
    H, W = height, width
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    video = np.empty((L, H, W, 3), np.uint8)
    alphas = np.empty((L, len(layers), H, W), np.float32)
    # premultiplied RGBA textures: one warp per layer and frame, exact at the silhouette borders
    rgba = [None] + [np.concatenate([lay.tex * lay.alpha[..., None], lay.alpha[..., None]], axis=2)
                     for lay in layers[1:]]
    for i in range(L):
        # background: opaque, border replicated
        out = cv2.warpAffine(layers[0].tex, _inv(layers[0].T[i]), (W, H), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        alphas[i, 0] = 1.0
        for j in range(1, len(layers)):
            # image -> local map; with WARP_INVERSE_MAP dst(q) = src(minv q)
            warped = cv2.warpAffine(rgba[j], _inv(layers[j].T[i]), (W, H), flags=flags,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            a = warped[..., 3]
            alphas[i, j] = a
            out = out * (1 - a[..., None]) + warped[..., :3]
        video[i] = np.clip(np.rint(out), 0, 255).astype(np.uint8)

    # owner of each frame-1 pixel: the top-most layer with alpha >= 0.5
    opaque1 = alphas[0] >= 0.5
    owner = (len(layers) - 1 - np.argmax(opaque1[::-1], axis=0)).astype(np.int64)

    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    flow = np.zeros((L, H, W, 2), np.float32)
    vis = np.ones((L, H, W), bool)
    for i in range(1, L):
        qx = np.empty((H, W))
        qy = np.empty((H, W))
        for j, lay in enumerate(layers):
            sel = owner == j
            if not sel.any():
                continue
            rel = _mul(lay.T[i], _inv(lay.T[0]))  # frame-1 image -> frame-i image for layer j
            ax, ay = _apply(rel, xs[sel], ys[sel])
            qx[sel], qy[sel] = ax, ay
        flow[i, ..., 0] = qx - xs
        flow[i, ..., 1] = qy - ys
        inside = (qx >= 0) & (qx <= W - 1) & (qy >= 0) & (qy <= H - 1)
        top = np.zeros((H, W), np.int64)
        for j in range(1, len(layers)):
            lay = layers[j]
            lx, ly = _apply(_inv(lay.T[i]), qx, qy)  # q in the local coordinates of layer j
            a = cv2.remap(
                lay.alpha, lx.astype(np.float32), ly.astype(np.float32), cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=0,
            )
            top[a >= 0.5] = j
        vis[i] = inside & (top <= owner)
    return video, flow, vis, owner


# --------------------------------------------------------------------------------------------
# motion models
# --------------------------------------------------------------------------------------------


def _path(rng, L, start, total, curve=0.35):
    """Smooth path: quadratic Bezier from ``start`` to ``start + total`` with a sideways bend."""
    t = np.linspace(0.0, 1.0, L)
    end = start + total
    normal = np.array([-total[1], total[0]])
    ctrl = (start + end) / 2 + normal * rng.uniform(-curve, curve)
    # ease-in-out time warp makes motion smooth and non-uniform
    t = t + rng.uniform(-0.15, 0.15) * np.sin(np.pi * t)
    return ((1 - t) ** 2)[:, None] * start + (2 * (1 - t) * t)[:, None] * ctrl + (t**2)[:, None] * end


def _random_direction(rng):
    a = rng.uniform(0, 2 * np.pi)
    return np.array([math.cos(a), math.sin(a)])


def _pick(rng, photos) -> str:
    return photos[int(rng.integers(0, len(photos)))]


def _object_layer(rng, name, L, H, W, size, start, total, rot=0.0, zoom=0.0, photos=PHOTO_NAMES, moving=True):
    """A textured object following a smooth path, with optional rotation / scaling over the clip."""
    h = max(4, int(round(size * rng.uniform(0.7, 1.3))))
    w = max(4, int(round(size * rng.uniform(0.7, 1.3))))
    photo = _pick(rng, photos)
    tex = tinted(rng, photo_crop(rng, photo, h, w))
    alpha = _shape_alpha(rng, h, w)
    centers = _path(rng, L, np.asarray(start, float), np.asarray(total, float))
    t = np.linspace(0, 1, L)
    T = np.stack(
        [
            _mul(
                _translate(*centers[i]),
                _rot_scale(rot * t[i], 1.0 + zoom * t[i]),
                _translate(-(w - 1) / 2, -(h - 1) / 2),
            )
            for i in range(L)
        ]
    )
    return _Layer(name, tex, alpha, T, moving, photo), (h, w)


def _part_layer(rng, parent: _Layer, parent_hw, L, swing, photos=PHOTO_NAMES):
    """A part attached to ``parent``: rotates about a pivot on the parent's rim (fine-grained motion)."""
    ph, pw = parent_hw
    h = max(3, int(round(ph * rng.uniform(0.35, 0.5))))
    w = max(3, int(round(pw * rng.uniform(0.35, 0.5))))
    photo = _pick(rng, photos)
    tex = tinted(rng, photo_crop(rng, photo, h, w), strength=0.6)
    alpha = _shape_alpha(rng, h, w, "ellipse")
    # pivot on the parent (local parent coords); the part hangs outwards from it
    ang = rng.uniform(0, 2 * np.pi)
    pivot = np.array([(pw - 1) / 2 + 0.3 * pw * math.cos(ang), (ph - 1) / 2 + 0.3 * ph * math.sin(ang)])
    place = _mul(_translate(*pivot), _rot_scale(ang, 1.0), _translate(0.0, -(h - 1) / 2))
    t = np.linspace(0, 1, L)
    phase = rng.uniform(0, 1)
    T = []
    for i in range(L):
        phi = swing * (math.sin(np.pi * (t[i] + phase)) - math.sin(np.pi * phase))
        local = _mul(_translate(*pivot), _rot_scale(phi, 1.0), _translate(*-pivot), place)
        T.append(_mul(parent.T[i], local))
    return _Layer(parent.name + ".part", tex, alpha, np.stack(T), True, photo)


def _camera(rng, L, H, W, pan, zoom):
    """Camera motion as image-space affine maps C_i (pan then zoom about the image centre)."""
    t = np.linspace(0, 1, L)
    t = t + rng.uniform(-0.1, 0.1) * np.sin(np.pi * t)
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    return np.stack([_mul(_translate(*c), _rot_scale(0.0, 1 + zoom * t[i]), _translate(*-c), _translate(*(pan * t[i])))
                     for i in range(L)])


def _background(rng, L, H, W, margin, photos=PHOTO_NAMES):
    photo = _pick(rng, photos)
    tex = photo_crop(rng, photo, H + 2 * margin, W + 2 * margin)
    T = np.repeat(_translate(-margin, -margin)[None], L, axis=0)
    return _Layer("background", tex, np.ones(tex.shape[:2], np.float32), T, False, photo)


def _check_size(num_frames, height, width):
    for name, v, lo in (("num_frames", num_frames, 2), ("height", height, 16), ("width", width, 16)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")


def _finish(layers, H, W, kind, meta):
    video, flow, vis, owner = render_layers(layers, H, W)
    moving_idx = [j for j, lay in enumerate(layers) if lay.moving]
    obj = np.isin(owner, moving_idx)
    meta = dict(meta, owner=torch.from_numpy(owner), layers=[lay.name for lay in layers],
                photographs=[lay.photo for lay in layers])
    return SyntheticClip(
        video=torch.from_numpy(video),
        flow=torch.from_numpy(flow),
        visibility=torch.from_numpy(vis),
        object_mask=torch.from_numpy(obj),
        kind=kind,
        meta=meta,
    )


def make_clip(seed: int, num_frames: int = 8, height: int = 64, width: int = 64,
              kind: str | None = None, photos=None) -> SyntheticClip:
    """Render one synthetic clip with exact ground-truth flow and visibility (Eq. 4).

    Kinds: ``"object"`` (static camera, 1-2 objects moving along smooth paths), ``"camera"``
    (pan/zoom moving everything, sometimes one moving object), ``"part"`` (static camera, an object
    with a part swinging relative to it, the object itself drifts slowly), ``"occlusion"`` (an
    occluder passes in front of a moving object) and ``"exit"`` (an object leaves the frame).
    ``kind=None`` draws a kind from the seed. Objects travel about 8-40 % of the short side over the
    clip (5-25 px at 64x64). Deterministic: the same arguments give identical tensors.

    ``photos``: the images the background and the objects' textures are cut from (names of
    :data:`PHOTO_SOURCES`; ``None``: :data:`PHOTO_NAMES`, the bench's seven).
    """
    _check_size(num_frames, height, width)
    photos = check_photos(photos)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    rng = np.random.default_rng(int(seed) & 0xFFFFFFFFFFFFFFFF)
    if kind is None:
        kind = KINDS[int(rng.choice(len(KINDS), p=_KIND_WEIGHTS))]
    if kind not in KINDS:
        raise ValueError(f"kind must be None or one of {KINDS}, got {kind!r}")
    L, H, W = int(num_frames), int(height), int(width)
    S = min(H, W)
    meta = {"seed": int(seed), "camera": kind == "camera"}

    def amp(lo=0.08, hi=0.4):
        return _random_direction(rng) * rng.uniform(lo, hi) * S

    def inner_point(frac=0.25):
        return np.array([rng.uniform(frac * W, (1 - frac) * W), rng.uniform(frac * H, (1 - frac) * H)])

    cam = None
    margin = 0
    if kind == "camera":
        pan = amp(0.05, 0.3)
        zoom = rng.uniform(-0.0, 0.15)
        meta.update(pan=pan.tolist(), zoom=float(zoom))
        cam = _camera(rng, L, H, W, pan, zoom)
        margin = int(math.ceil(np.abs(pan).max() + 2))
    bg = _background(rng, L, H, W, margin, photos)
    layers = [bg]
    size = S * rng.uniform(0.3, 0.45)
    if kind == "object":
        for k in range(int(rng.integers(1, 3))):
            lay, _ = _object_layer(rng, f"object{k}", L, H, W, size, inner_point(), amp(),
                                   rot=rng.uniform(-0.5, 0.5), zoom=rng.uniform(-0.15, 0.15), photos=photos)
            layers.append(lay)
    elif kind == "camera":
        n_static = int(rng.integers(1, 3))
        for k in range(n_static):
            lay, _ = _object_layer(rng, f"static{k}", L, H, W, size, inner_point(), np.zeros(2), moving=False,
                                  photos=photos)
            layers.append(lay)
        if rng.uniform() < 0.5:
            lay, _ = _object_layer(rng, "object0", L, H, W, size, inner_point(), amp(0.08, 0.3), photos=photos)
            layers.append(lay)
    elif kind == "part":
        lay, hw = _object_layer(rng, "object0", L, H, W, S * rng.uniform(0.35, 0.5), inner_point(0.35), amp(0.0, 0.1),
                                rot=rng.uniform(-0.2, 0.2), photos=photos)
        layers.append(lay)
        layers.append(_part_layer(rng, lay, hw, L, swing=rng.choice([-1, 1]) * rng.uniform(0.3, 0.7),
                                  photos=photos))
    elif kind == "occlusion":
        target, (th, tw) = _object_layer(rng, "object0", L, H, W, size, inner_point(0.3), amp(0.05, 0.2), photos=photos)
        layers.append(target)
        # occluder crosses the target's mid-clip position
        mid = np.array(_apply(target.T[L // 2], np.array((tw - 1) / 2), np.array((th - 1) / 2)), float)
        d = _random_direction(rng)
        travel = rng.uniform(0.3, 0.45) * S
        start = mid - d * travel / 2
        occ, _ = _object_layer(rng, "occluder", L, H, W, size * rng.uniform(0.8, 1.2), start, d * travel, photos=photos)
        layers.append(occ)
    elif kind == "exit":
        # the path ends across the frame border (the object leaves at least partly)
        c = np.array([(W - 1) / 2, (H - 1) / 2]) + rng.uniform(-0.1, 0.1, 2) * S
        d = _random_direction(rng)
        tx = ((W if d[0] > 0 else 0) - c[0]) / d[0] if abs(d[0]) > 1e-6 else np.inf
        ty = ((H if d[1] > 0 else 0) - c[1]) / d[1] if abs(d[1]) > 1e-6 else np.inf
        end = c + d * (min(tx, ty) + rng.uniform(0.0, 0.4) * size)
        dist = rng.uniform(0.3, 0.45) * S
        lay, _ = _object_layer(rng, "object0", L, H, W, size, end - d * dist, d * dist, photos=photos)
        layers.append(lay)
    if cam is not None:
        for lay in layers:
            lay.T = np.stack([_mul(cam[i], lay.T[i]) for i in range(L)])
    return _finish(layers, H, W, kind, meta)


def photo_clip(seed: int = 0, num_frames: int = 16, height: int = 320, width: int = 512, photo: str = "chelsea",
               kind: str = "part") -> SyntheticClip:
    """A clip built from one real photograph, with exact ground truth.

    ``kind="part"``: an elliptical region of the photo (e.g. the cat's head) is cut out and moves
    along a smooth path (rotating slightly); the hole it leaves is filled by OpenCV inpainting.
    ``kind="camera"``: the camera pans and zooms over the photograph.
    Returned ``kind`` is ``"photo-part"`` or ``"photo-camera"``.
    """
    _check_size(num_frames, height, width)
    if kind not in ("part", "camera"):
        raise ValueError(f"kind must be 'part' or 'camera', got {kind!r}")
    if photo not in PHOTO_SOURCES:
        raise ValueError(f"photo must be one of {ALL_PHOTOS}, got {photo!r}")
    rng = np.random.default_rng(int(seed))
    L, H, W = int(num_frames), int(height), int(width)
    S = min(H, W)
    meta = {"seed": int(seed), "photo": photo, "camera": kind == "camera"}
    if kind == "camera":
        pan = _random_direction(rng) * rng.uniform(0.1, 0.2) * S
        zoom = rng.uniform(0.05, 0.15)
        margin = int(math.ceil(np.abs(pan).max() + 2))
        orig = load_photo(photo)  # resize so the photo covers the canvas, then centre crop
        scale = max((H + 2 * margin) / orig.shape[0], (W + 2 * margin) / orig.shape[1])
        img = photo_scaled(photo, int(math.ceil(min(orig.shape[:2]) * scale)) + 1)
        y0 = (img.shape[0] - H - 2 * margin) // 2
        x0 = (img.shape[1] - W - 2 * margin) // 2
        tex = img[y0 : y0 + H + 2 * margin, x0 : x0 + W + 2 * margin].astype(np.float32)
        cam = _camera(rng, L, H, W, pan, zoom)
        T = np.stack([_mul(cam[i], _translate(-margin, -margin)) for i in range(L)])
        layers = [_Layer("background", tex, np.ones(tex.shape[:2], np.float32), T, False, photo)]
        meta.update(pan=pan.tolist(), zoom=float(zoom))
        return _finish(layers, H, W, "photo-camera", meta)

    # frame-sized view of the photograph (resize so the short side fits, centre crop)
    img = load_photo(photo)
    s = max(H / img.shape[0], W / img.shape[1])
    img = photo_scaled(photo, int(math.ceil(min(img.shape[:2]) * s)))
    y0, x0 = (img.shape[0] - H) // 2, (img.shape[1] - W) // 2
    frame = img[y0 : y0 + H, x0 : x0 + W].astype(np.float32)
    # region: an ellipse around a random point in the central part of the photo
    rh, rw = int(S * rng.uniform(0.25, 0.35)), int(S * rng.uniform(0.3, 0.4))
    cx, cy = rng.uniform(0.35, 0.65) * W, rng.uniform(0.35, 0.6) * H
    ry0, rx0 = int(round(cy - rh / 2)), int(round(cx - rw / 2))
    ry0, rx0 = min(max(ry0, 1), H - rh - 1), min(max(rx0, 1), W - rw - 1)
    alpha = _shape_alpha(rng, rh, rw, "ellipse")
    tex = frame[ry0 : ry0 + rh, rx0 : rx0 + rw].copy()
    hole = np.zeros((H, W), np.uint8)
    hole[ry0 : ry0 + rh, rx0 : rx0 + rw] = (alpha > 0).astype(np.uint8)
    hole = cv2.dilate(hole, np.ones((5, 5), np.uint8))
    bg = cv2.inpaint(np.clip(frame, 0, 255).astype(np.uint8), hole, 5, cv2.INPAINT_TELEA).astype(np.float32)
    c0 = np.array([rx0 + (rw - 1) / 2, ry0 + (rh - 1) / 2])
    total = _random_direction(rng) * rng.uniform(0.1, 0.2) * S
    centers = _path(rng, L, c0, total, curve=0.2)
    rot = rng.uniform(-0.3, 0.3)
    t = np.linspace(0, 1, L)
    T = np.stack([_mul(_translate(*centers[i]), _rot_scale(rot * t[i], 1.0), _translate(-(rw - 1) / 2, -(rh - 1) / 2))
                  for i in range(L)])
    layers = [
        _Layer("background", bg, np.ones((H, W), np.float32), np.repeat(_translate(0, 0)[None], L, 0), False, photo),
        _Layer("region", tex, alpha, T, True, photo),
    ]
    meta.update(region_box=(rx0, ry0, rw, rh), travel=total.tolist(), rotation=float(rot))
    return _finish(layers, H, W, "photo-part", meta)


def clip_seed(seed: int, index: int) -> int:
    """The :func:`make_clip` seed of clip ``index`` of a data set seeded ``seed`` (one rule for every clip
    collection of the project: :class:`SyntheticClipDataset` and the training clips)."""
    return int(seed) * 1_000_003 + int(index)


class SyntheticClipDataset(torch.utils.data.Dataset):
    """``num_clips`` procedural clips; item ``i`` is ``make_clip(clip_seed(seed, i), ...)``.

    Returns :class:`SyntheticClip` objects (``as_dict=True`` returns plain dicts of tensors + kind,
    which the default collate function can batch).
    """

    def __init__(self, num_clips: int, num_frames: int = 8, height: int = 64, width: int = 64, seed: int = 0,
                 kind: str | None = None, as_dict: bool = False):
        if not isinstance(num_clips, (int, np.integer)) or num_clips < 1:
            raise ValueError(f"num_clips must be a positive int, got {num_clips!r}")
        _check_size(num_frames, height, width)
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be None or one of {KINDS}, got {kind!r}")
        self.num_clips, self.num_frames, self.height, self.width = int(num_clips), num_frames, height, width
        self.seed, self.kind, self.as_dict = int(seed), kind, as_dict

    def __len__(self):
        return self.num_clips

    def __getitem__(self, i):
        if not -self.num_clips <= i < self.num_clips:
            raise IndexError(f"index {i} out of range for {self.num_clips} clips")
        i = i % self.num_clips
        clip = make_clip(clip_seed(self.seed, i), self.num_frames, self.height, self.width, kind=self.kind)
        return clip.as_dict() if self.as_dict else clip
