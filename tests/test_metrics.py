"""Tests of remoco.metrics: every metric on inputs with a known answer (a textured square or a whole textured
frame moving a known number of pixels per frame, constant-colour frames, Gaussians with closed-form Fréchet
distances), the labels, the embedders (a tiny randomly initialised VAE and CLIP built from the real classes;
nothing is downloaded), and the errors on bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from remoco import metrics as M

torch.set_num_threads(1)

L = 8
VEL = np.array([2.0, 1.0])  # px per frame of the moving square
P0 = np.array([28.0, 32.0])  # a point inside the square in frame 1


def _square_video(L=L, H=64, W=64, start=(20, 24), vel=VEL, seed=0):
    """A textured 16x16 square translating by `vel` (whole) px per frame over a flat background."""
    tex = cv2.GaussianBlur((np.random.default_rng(seed).random((16, 16, 3)) * 255).astype(np.uint8), (3, 3), 0)
    frames = np.full((L, H, W, 3), 90, np.uint8)
    for i in range(L):
        x0, y0 = int(start[0] + vel[0] * i), int(start[1] + vel[1] * i)
        frames[i, y0:y0 + 16, x0:x0 + 16] = tex
    return frames


def _panning_video(L=6, size=64, vel=(2, 1), seed=1):
    """A whole smooth random texture moving by -vel px per frame (a window sliding by +vel over it)."""
    big = cv2.GaussianBlur((np.random.default_rng(seed).random((128, 128, 3)) * 255).astype(np.uint8), (0, 0), 2)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([big[10 + vel[1] * i:10 + vel[1] * i + size, 10 + vel[0] * i:10 + vel[0] * i + size]
                     for i in range(L)])


@pytest.fixture(scope="module")
def square():
    return _square_video()


@pytest.fixture(scope="module")
def true_path():
    return P0 + np.arange(L)[:, None] * VEL


@pytest.fixture(scope="module")
def toy_vae():
    """The project's toy VAE (diffusers' real class, randomly initialised; nothing is downloaded)."""
    from diffusers import AutoencoderKLTemporalDecoder

    from remoco.models import toy_vae_config

    torch.manual_seed(0)
    return AutoencoderKLTemporalDecoder(**toy_vae_config()).eval()


@pytest.fixture(scope="module")
def vae_embedder(toy_vae):
    return M.vae_embedder(toy_vae)


# ------------------------------------------------------------------------------------------ labels
def test_labels_name_the_substitute_and_the_paper_model():
    assert M.metric_label("MD-Vid", "LK tracker") == "MD-Vid (LK tracker; paper: CoTracker)"
    assert M.METRIC_LABELS["FID"] == "FID (toy VAE encoder features; paper: Inception)"
    assert M.METRIC_LABELS["FVD"].startswith("FVD (toy VAE encoder") and M.METRIC_LABELS["FVD"].endswith("paper: I3D)")
    assert "paper: DIFT" in M.METRIC_LABELS["MD-Img"] and "paper: CLIP" in M.METRIC_LABELS["Frame Consis."]
    assert M.METRIC_LABELS["Avg. flow magnitude"].startswith("Avg. flow magnitude (OpenCV DIS; paper: not named")
    with pytest.raises(ValueError, match="name"):
        M.metric_label("PSNR", "x")
    with pytest.raises(ValueError, match="backend"):
        M.metric_label("FID", "")


# ------------------------------------------------------------------------------------------ MD-Vid, MD-Img
@pytest.mark.parametrize("metric", [M.md_vid, M.md_img])
def test_md_metrics_on_known_motion(metric, square, true_path):
    s = metric(square, true_path)
    assert s.value < 0.3, s.value
    assert s.per_frame.shape == (L - 1,) and s.positions.shape == (L, 2)
    assert np.abs(s.positions - true_path).max() < 0.6
    # the drawn path shifted by (3, 4) px after frame 1: the distance is the shift
    shifted = true_path.copy()
    shifted[1:] += (3.0, 4.0)
    assert abs(float(metric(square, shifted)) - 5.0) < 0.3
    # a still video: the distance is the drawn path's own mean displacement
    still = np.repeat(square[:1], L, 0)
    expected = np.linalg.norm(true_path[1:] - P0, axis=1).mean()
    assert abs(metric(still, true_path).value - expected) < 0.3
    # float input in [0, 1] gives the same answer
    assert abs(metric(square / 255.0, true_path).value - s.value) < 1e-6


def test_md_labels_and_trackers(square, true_path):
    assert M.md_vid(square, true_path).label == "MD-Vid (OpenCV DIS flow tracker; paper: CoTracker)"
    assert M.METRIC_LABELS["MD-Vid"] == M.md_vid(square, true_path).label
    lk = M.md_vid(square, true_path, tracker="lk")
    assert lk.label == "MD-Vid (LK tracker; paper: CoTracker)" and lk.value < 0.5
    assert M.md_img(square, true_path).label == "MD-Img (NCC matcher, 11x11 patch; paper: DIFT)"


def test_md_img_searches_the_whole_frame():
    # 7 px per frame: far beyond a local search window, found anyway by matching over the whole frame
    vel = np.array([7.0, -3.0])
    v = _square_video(L=6, H=96, W=96, start=(4, 70), vel=vel)
    path = np.array([12.0, 78.0]) + np.arange(6)[:, None] * vel
    assert M.md_img(v, path).value < 0.3


def test_md_vid_cotracker_needs_weights(square, true_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        M.md_vid(square, true_path, tracker="cotracker")
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        M.md_vid(square, true_path, tracker="cotracker", checkpoint=tmp_path / "scaled_offline.pth")
    with pytest.raises(ValueError, match="checkpoint"):
        M.md_vid(square, true_path, checkpoint=tmp_path / "x.pth")
    with pytest.raises(ValueError, match="tracker"):
        M.md_vid(square, true_path, tracker="dift")
    with pytest.raises(ValueError, match="matcher"):
        M.md_img(square, true_path, matcher="dift")


def test_md_img_rejects_a_uniform_start_patch_and_bad_patch(square, true_path):
    flat_start = true_path.copy()
    flat_start[:, 0] -= 20  # x = 8: on the flat background, far from the square
    with pytest.raises(ValueError, match="uniform"):
        M.md_img(square, flat_start)
    for patch in (4, 2, 65, 5.0):
        with pytest.raises(ValueError, match="patch"):
            M.md_img(square, true_path, patch=patch)


def _bad_inputs(square, true_path):
    outside = true_path.copy()
    outside[3] = (70.0, 10.0)
    nan = true_path.copy()
    nan[2, 1] = np.nan
    return [
        (square[:1], true_path[:1], "video"),  # one frame
        (square[:0], true_path[:0], "video"),  # empty
        (square[..., 0], true_path, "video"),  # no colour axis
        (square.astype(np.int32), true_path, "video"),  # wrong dtype
        (square / 255.0 * 1.5, true_path, r"\[0, 1\]"),  # floats out of range: an error, not clipped
        (square, true_path[:-1], "trajectory"),  # length != frames
        (square, true_path[:, :1], "trajectory"),
        (square, outside, "trajectory"),  # a point outside the image
        (square, nan, "trajectory"),
        (square, "abc", "trajectory"),
    ]


@pytest.mark.parametrize("metric", [M.md_vid, M.md_img])
def test_md_metrics_reject_bad_input(metric, square, true_path):
    for video, traj, match in _bad_inputs(square, true_path):
        with pytest.raises(ValueError, match=match):
            metric(video, traj)


# ------------------------------------------------------------------------------------------ frame consistency
class _MeanColour:
    label = "mean colour"

    def __call__(self, frames):
        return np.asarray(frames, np.float64).mean(axis=(1, 2))


def test_frame_consistency_known_answer():
    red, yellow = np.array([255, 0, 0], np.uint8), np.array([255, 255, 0], np.uint8)
    video = np.stack([np.broadcast_to(c, (8, 8, 3)) for c in (red, yellow, yellow)])
    s = M.frame_consistency(video, _MeanColour())
    assert np.allclose(s.per_frame, [1 / np.sqrt(2), 1.0])
    assert abs(s.value - (1 / np.sqrt(2) + 1) / 2) < 1e-12
    assert s.label == "Frame Consis. (mean colour; paper: CLIP)"
    with pytest.raises(ValueError, match="zero embedding"):
        M.frame_consistency(np.zeros((3, 8, 8, 3), np.uint8), _MeanColour())
    with pytest.raises(ValueError, match="embedder"):
        M.frame_consistency(video, lambda f: f.mean(axis=(1, 2)))  # no label
    with pytest.raises(ValueError, match="embedder"):
        M.frame_consistency(video, M.Embedder(lambda x: x.mean((2, 3))[:1], "one row"))  # wrong row count


def test_frame_consistency_with_the_toy_vae(vae_embedder, square):
    assert vae_embedder.label == "toy VAE encoder"
    static = M.frame_consistency(np.repeat(square[:1], 4, 0), vae_embedder)
    assert abs(static.value - 1.0) < 1e-9
    assert static.label == "Frame Consis. (toy VAE encoder; paper: CLIP)"
    moving = M.frame_consistency(square, vae_embedder).value
    noise = (np.random.default_rng(3).random((L, 64, 64, 3)) * 255).astype(np.uint8)
    jumping = M.frame_consistency(np.where(np.arange(L)[:, None, None, None] % 2, noise, square), vae_embedder).value
    assert jumping < moving < 1.0 - 1e-6
    with pytest.raises(ValueError, match="video"):
        M.frame_consistency(square[:1], vae_embedder)


def test_clip_embedder_loads_a_local_model(tmp_path, square):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with pytest.raises(FileNotFoundError, match="path"):
        M.clip_embedder(tmp_path / "clip-vit")
    torch.manual_seed(0)  # a tiny random CLIP written to disk here: this tests the loader, not CLIP
    cfg = CLIPVisionConfig(hidden_size=16, intermediate_size=32, projection_dim=8, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=16)
    CLIPVisionModelWithProjection(cfg).save_pretrained(tmp_path / "tiny-clip")
    emb = M.clip_embedder(tmp_path / "tiny-clip")
    assert emb.label == "CLIP vision (tiny-clip)"
    assert emb(square[:3]).shape == (3, 8)
    s = M.frame_consistency(np.repeat(square[:1], 3, 0), emb)
    assert abs(s.value - 1) < 1e-9 and s.label == "Frame Consis. (CLIP vision (tiny-clip); paper: CLIP)"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((tmp_path / "tiny-clip" / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="path"):
        M.clip_embedder(tmp_path / "empty")  # a config but no weights


def test_inception_embedder_needs_a_safetensors_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        M.inception_embedder(tmp_path / "inception_v3.safetensors")
    (tmp_path / "inception_v3.pth").write_bytes(b"not read")
    with pytest.raises(ValueError, match="safetensors"):
        M.inception_embedder(tmp_path / "inception_v3.pth")


def test_inception_embedder_loads_torchvision_weights(tmp_path):
    tv = pytest.importorskip("torchvision")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = tv.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "inc.safetensors")
    emb = M.inception_embedder(tmp_path / "inc.safetensors")
    assert emb(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 2048)


# ------------------------------------------------------------------------------------------ Fréchet distance
def _random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def test_frechet_closed_forms():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.random(d) + 0.1, rng.random(d) + 0.1
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert abs(M.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) - expected) < 1e-10
    sigma = _random_cov(rng, d)
    assert abs(M.frechet_distance(mu1, sigma, mu1, sigma)) < 1e-9  # identical Gaussians
    shift = rng.normal(size=d)
    assert abs(M.frechet_distance(mu1, sigma, mu1 + shift, sigma) - shift @ shift) < 1e-9  # a translation
    # one dimension: (m1 - m2)^2 + (sqrt(s1) - sqrt(s2))^2
    assert abs(M.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) - (4.0 + 1.0)) < 1e-12
    # full, non-commuting covariances: tr sqrt(S1 S2) = sum sqrt(eig(S1 S2)) (eigenvalues real, >= 0)
    s1f, s2f = _random_cov(rng, d), _random_cov(rng, d)
    ref = np.trace(s1f) + np.trace(s2f) - 2 * np.sqrt(np.linalg.eigvals(s1f @ s2f).real.clip(0)).sum()
    assert abs(M.frechet_distance(mu1, s1f, mu1, s2f) - ref) < 1e-8
    assert abs(M.frechet_distance(mu1, s1f, mu2, s2f) - M.frechet_distance(mu2, s2f, mu1, s1f)) < 1e-8


def test_frechet_is_robust_to_singular_covariances_and_rounding():
    rng = np.random.default_rng(1)
    d = 20
    # diagonal with zeros: the closed form still holds, with no epsilon added
    s1, s2 = np.r_[rng.random(10), np.zeros(10)], np.r_[np.zeros(5), rng.random(15)]
    expected = np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert abs(M.frechet_distance(np.zeros(d), np.diag(s1), np.zeros(d), np.diag(s2)) - expected) < 1e-10
    # rank-4 covariances from 5 samples in 20 dimensions (where sqrtm(S1 S2) gets tiny imaginary parts)
    f1, f2 = rng.normal(size=(5, d)), rng.normal(size=(5, d)) + 0.5
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    ref = np.sum((f1.mean(0) - f2.mean(0)) ** 2) + np.trace(c1) + np.trace(c2) \
        - 2 * np.sqrt(np.linalg.eigvals(c1 @ c2).real.clip(0)).sum()
    got = M.frechet_from_features(f1, f2)
    assert isinstance(got, float) and np.isfinite(got) and abs(got - ref) < 1e-6
    assert abs(M.frechet_from_features(f1, f1)) < 1e-9
    # rounding-level asymmetry and negligible imaginary parts are accepted, real errors are not
    c = _random_cov(rng, 4)
    noisy = c + 1e-13 * rng.normal(size=(4, 4))
    assert abs(M.frechet_distance(np.zeros(4), noisy, np.zeros(4), c + 1e-15j)) < 1e-6
    with pytest.raises(ValueError, match="imaginary"):
        M.frechet_distance(np.zeros(4), c + 1e-2j, np.zeros(4), c)


def test_frechet_rejects_bad_input():
    c = np.eye(3)
    z = np.zeros(3)
    for args, match in [((z, c, np.zeros(2), c), "mu2"), ((z, np.eye(2), z, c), "sigma1"),
                        ((z, c, z, np.triu(np.ones((3, 3)))), "symmetric"),
                        ((z, -c, z, c), "positive semi-definite"), ((z, c, z * np.nan, c), "mu2"),
                        ((z, c, z, np.full((3, 3), np.inf)), "sigma2"),
                        ((np.zeros(0), np.eye(0), np.zeros(0), np.eye(0)), "mu1")]:
        with pytest.raises(ValueError, match=match):
            M.frechet_distance(*args)
    with pytest.raises(ValueError, match="real"):
        M.gaussian_statistics(np.zeros((1, 3)), "real")
    with pytest.raises(ValueError, match="dimension"):
        M.frechet_from_features(np.ones((3, 2)).cumsum(0), np.ones((3, 4)).cumsum(0))


# ------------------------------------------------------------------------------------------ KID / KVD
def test_kernel_distance_by_hand_and_on_known_distributions():
    # degree 1, one dimension: k(x, y) = x y + 1. X = {0, 2}, Y = {1, 3}:
    # within X (i != j): k(0, 2) = 1; within Y: k(1, 3) = 4; across: k(0,1) = 1, k(0,3) = 1, k(2,1) = 3, k(2,3) = 7
    # -> 1 + 4 - 2 * (1 + 1 + 3 + 7) / 4 = -1
    assert M.kernel_distance_from_features([[0.0], [2.0]], [[1.0], [3.0]], degree=1) == pytest.approx(-1.0)
    rng = np.random.default_rng(7)
    same = [M.kernel_distance_from_features(rng.normal(size=(50, 8)), rng.normal(size=(50, 8))) for _ in range(40)]
    shifted = [M.kernel_distance_from_features(rng.normal(size=(50, 8)), rng.normal(size=(50, 8)) + 0.5)
               for _ in range(40)]
    farther = M.kernel_distance_from_features(rng.normal(size=(50, 8)), rng.normal(size=(50, 8)) + 1.5)
    # unbiased: draws of one distribution average about 0 (some come out negative); a shift lifts it, more shift more
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3 and min(same) < 0
    assert np.mean(shifted) > np.mean(same) + 5 * np.std(same) / np.sqrt(len(same)) and farther > np.mean(shifted)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(9, 3)) + 1.0
    assert M.kernel_distance_from_features(x, y) == pytest.approx(M.kernel_distance_from_features(y, x))
    for args, match in [((np.zeros((1, 3)), x), "real"), ((x, np.zeros((4, 2))), "dimension"),
                        ((x, np.full((4, 3), np.nan)), "generated")]:
        with pytest.raises(ValueError, match=match):
            M.kernel_distance_from_features(*args)
    with pytest.raises(ValueError, match="degree"):
        M.kernel_distance_from_features(x, y, degree=0)


def test_distribution_scores_match_the_single_metrics(vae_embedder):
    real = [_square_video(L=4, H=32, W=32, start=(4, 4), vel=(2, 1), seed=s) for s in range(3)]
    darker = [(v * 0.6).astype(np.uint8) for v in real]
    scores, samples = M.distribution_scores(real, darker, vae_embedder)
    assert set(scores) == set(M.DISTRIBUTION_METRICS) == {"FID", "FVD", "KID", "KVD"}
    for name, fn in (("FID", M.fid), ("FVD", M.fvd), ("KID", M.kid), ("KVD", M.kvd)):
        single = fn(real, darker, vae_embedder)
        assert scores[name].value == pytest.approx(single.value) and scores[name].label == single.label
    assert samples == {"frames": [12, 64], "clips": [3, 192]}
    assert scores["KID"].label == "KID (toy VAE encoder features; not in the paper: beside its FID)"
    assert M.kid(real, darker, vae_embedder).value > M.kid(real, [(v * 0.9).astype(np.uint8) for v in real],
                                                            vae_embedder).value
    with pytest.raises(ValueError, match="name"):
        M.metric_label("KXD", "x")


# ------------------------------------------------------------------------------------------ FID / FVD
def test_fid_and_fvd_with_the_toy_vae(vae_embedder, toy_vae):
    rng = np.random.default_rng(4)
    real = [_square_video(L=4, H=32, W=32, start=(4, 4), vel=(2, 1), seed=s) for s in range(4)]
    assert M.fid(real, real, vae_embedder).value < 1e-6
    assert M.fvd(real, real, vae_embedder).value < 1e-6
    # the same frames in another order in every clip: FID (frame statistics) cannot tell, FVD can
    shuffled = [v[rng.permutation(4)] for v in real]
    assert M.fid(real, shuffled, vae_embedder).value < 1e-6
    assert M.fvd(real, shuffled, vae_embedder).value > 1e-3
    darker = [(v * 0.5).astype(np.uint8) for v in real]
    f = M.fid(real, darker, vae_embedder)
    assert f.value > 1e-3 and abs(f.value - M.fid(darker, real, vae_embedder).value) < 1e-6 * f.value
    assert f.label == "FID (toy VAE encoder features; paper: Inception)"
    assert M.fvd(real, darker, vae_embedder).label == \
        "FVD (toy VAE encoder clip features: frame mean + temporal differences; paper: I3D)"
    assert M.video_features(np.stack(real), vae_embedder).shape == (4, 3 * 4 * 16)  # 4 latent channels, 4x4 grid
    assert M.frame_features(real, vae_embedder).shape == (16, 64)
    for bad, match in [([], "no clips"), (real[0], "videos"), ("clip", "videos"), ([real[0][:1]], r"videos\[0\]")]:
        with pytest.raises(ValueError, match=match):
            M.fvd(bad, real, vae_embedder)
    with pytest.raises(ValueError, match="real"):
        M.fvd(real[:1], real, vae_embedder)  # one clip: no covariance
    with pytest.raises(ValueError, match="vae"):
        M.vae_embedder(object())
    with pytest.raises(ValueError, match="grid"):
        M.vae_embedder(toy_vae, grid=0)
    with pytest.raises(ValueError, match="grid"):
        M.vae_embedder(toy_vae, grid=9)(real[0])  # the 32 px frames have 8x8 latents


# ------------------------------------------------------------------------------------------ flow magnitude
def test_average_flow_magnitude_global_motion():
    v = _panning_video(L=6, vel=(2, 1))
    s = M.average_flow_magnitude(v)
    expected = np.hypot(2, 1) * np.mean(np.arange(1, 6))  # |v| t averaged over t = 1..5
    assert abs(s.value - expected) < 0.05 * expected, (s.value, expected)
    assert np.allclose(s.per_frame, np.hypot(2, 1) * np.arange(1, 6), rtol=0.08)
    assert s.label == "Avg. flow magnitude (OpenCV DIS; paper: not named in Sec. 4.2)"
    assert M.average_flow_magnitude(np.repeat(v[:1], 4, 0)).value < 0.05  # a still clip


def test_average_flow_magnitude_is_area_weighted():
    # the left half pans, the right half (another texture) stands still: half the pixels move.
    # (Textured everywhere: on a flat background DIS spreads a moving object's flow into the flat area.)
    v = _panning_video(L=6, vel=(2, 1))
    v[:, :, 32:] = _panning_video(L=1, seed=5)[0, :, 32:]
    expected = 0.5 * np.hypot(2, 1) * np.mean(np.arange(1, 6))
    s = M.average_flow_magnitude(v)
    assert abs(s.value - expected) < 0.06 * expected, (s.value, expected)


def test_average_flow_magnitude_bad_input(square, tmp_path):
    for video in (square[:1], square[..., :2], square.astype(np.float32) * 2):
        with pytest.raises(ValueError, match="video"):
            M.average_flow_magnitude(video)
    with pytest.raises(ValueError, match="backend"):
        M.average_flow_magnitude(square, backend="raft")
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        M.average_flow_magnitude(square, backend="dot", checkpoint=tmp_path / "none")
