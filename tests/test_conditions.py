"""Tests of remoco.conditions (paper Sec. 3.2 Eq. 5-7 + motion mask, Sec. 3.4 user conditions)."""

import math

import numpy as np
import pytest
import torch

from remoco import conditions as C
from remoco import gaussian as G
from remoco import user_conditions as UC


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _clip(L=4, H=16, W=24, seed=0, p_vis=0.9, scale=2.0):
    g = _gen(seed)
    flow = torch.randn(L, H, W, 2, generator=g) * scale
    vis = torch.rand(L, H, W, generator=g) < p_vis
    return flow, vis


# ------------------------------------------------------------------ reference loop implementations
def _ref_global_visibility(vis):
    L, H, W = vis.shape
    out = torch.zeros(H, W, dtype=torch.bool)
    for y in range(H):
        for x in range(W):
            out[y, x] = all(bool(vis[i, y, x]) for i in range(L))
    return out


def _ref_region_trajectory(flow, vis, sel, k, variant="paper"):
    L, H, W, _ = flow.shape
    out = torch.zeros_like(flow)
    m_g = _ref_global_visibility(vis)
    for y in range(H):
        for x in range(W):
            cell = bool(sel[y // k, x // k])
            if variant == "paper":
                keep = cell and bool(m_g[y, x])
            else:  # release: visibility of the cell = M_g at its top-left pixel (nearest resize)
                keep = cell and bool(m_g[(y // k) * k, (x // k) * k])
            if keep:
                for i in range(L):
                    out[i, y, x] = flow[i, y, x]
    return out


def _ref_motion_mask(flow, threshold=1.0, variant="paper"):
    L, H, W, _ = flow.shape
    out = torch.zeros(L, H, W, 1, dtype=torch.bool)
    for y in range(H):
        for x in range(W):
            vals = []
            for i in range(L):
                dx, dy = float(flow[i, y, x, 0]), float(flow[i, y, x, 1])
                sq = dx * dx + dy * dy
                vals.append(math.sqrt(sq) if variant == "paper" else sq)
            out[:, y, x, 0] = sum(vals) / L > threshold
    return out


# ------------------------------------------------------------------ Eq. 5
def test_global_visibility_is_and_over_frames():
    _, vis = _clip(L=5, H=8, W=8, p_vis=0.8)
    got = C.global_visibility(vis)
    assert got.dtype == torch.bool and got.shape == (8, 8)
    assert torch.equal(got, _ref_global_visibility(vis))
    assert torch.equal(C.global_visibility(torch.ones(3, 4, 4, dtype=torch.bool)), torch.ones(4, 4, dtype=torch.bool))
    one_off = torch.ones(3, 4, 4, dtype=torch.bool)
    one_off[2, 1, 3] = False
    expected = torch.ones(4, 4, dtype=torch.bool)
    expected[1, 3] = False
    assert torch.equal(C.global_visibility(one_off), expected)


# ------------------------------------------------------------------ selection and Pad
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 0.95, 1.0])
def test_selection_fixed_ratio_keeps_exact_count(ratio):
    H, W, k = 32, 48, 8
    n = (H // k) * (W // k)
    sel = C.sample_region_selection(H, W, k, 0.0, generator=_gen(1), ratio=ratio)
    assert sel.shape == (H // k, W // k) and sel.dtype == torch.bool
    assert int(sel.sum()) == n - math.floor(ratio * n + 0.5)


def test_selection_ratio_distribution_within_bounds():
    H, W, k, r_min = 80, 80, 4, 0.6
    n = (H // k) * (W // k)
    g = _gen(3)
    kept = torch.tensor([int(C.sample_region_selection(H, W, k, r_min, generator=g).sum()) for _ in range(300)])
    dropped_ratio = 1 - kept.float() / n
    assert dropped_ratio.min() >= r_min - 0.5 / n - 1e-9
    assert dropped_ratio.max() <= 1.0
    # uniform on [r_min, 1]: mean close to (1 + r_min) / 2 and spread over the interval
    assert abs(float(dropped_ratio.mean()) - (1 + r_min) / 2) < 0.03
    assert float(dropped_ratio.min()) < r_min + 0.05 and float(dropped_ratio.max()) > 0.95


def test_selection_cells_uniform():
    # every cell is dropped with the same probability (here r_m fixed at 0.5)
    g = _gen(4)
    freq = torch.stack([C.sample_region_selection(8, 8, 2, 0.0, generator=g, ratio=0.5)
                        for _ in range(2000)]).float().mean(0)
    assert (freq - 0.5).abs().max() < 0.06


def test_selection_determinism():
    a = C.sample_region_selection(64, 64, 8, 0.5, generator=_gen(7))
    b = C.sample_region_selection(64, 64, 8, 0.5, generator=_gen(7))
    assert torch.equal(a, b)
    f, v = _clip(H=32, W=32)
    t1, m1 = C.training_conditions(f, v, k=4, r_min=0.5, generator=_gen(5))
    t2, m2 = C.training_conditions(f, v, k=4, r_min=0.5, generator=_gen(5))
    assert torch.equal(t1, t2) and torch.equal(m1, m2)


def test_pad_selection_block_structure():
    g = _gen(2)
    sel = torch.rand(3, 5, generator=g) > 0.5
    k = 4
    pad = C.pad_selection(sel, k)
    assert pad.shape == (12, 20) and pad.dtype == torch.bool
    for i in range(3):
        for j in range(5):
            block = pad[i * k : (i + 1) * k, j * k : (j + 1) * k]
            assert bool((block == sel[i, j]).all())
    assert torch.equal(C.pad_selection(sel, 1), sel)


# ------------------------------------------------------------------ Eq. 6-7
@pytest.mark.parametrize("variant", ["paper", "release"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_region_trajectory_matches_loop(variant, k):
    flow, vis = _clip(L=3, H=8, W=12, seed=k, p_vis=0.93)
    sel = torch.rand(8 // k, 12 // k, generator=_gen(10 + k)) > 0.4
    got = C.region_trajectory(flow, vis, sel, k, variant=variant)
    assert got.shape == flow.shape and got.dtype == flow.dtype
    assert torch.equal(got, _ref_region_trajectory(flow, vis, sel, k, variant))


def test_region_trajectory_float64_path():
    flow, vis = _clip(L=3, H=8, W=8, seed=3)
    sel = torch.rand(2, 2, generator=_gen(1)) > 0.3
    got = C.region_trajectory(flow.double(), vis, sel, 4)
    assert got.dtype == torch.float64
    assert torch.equal(got, _ref_region_trajectory(flow.double(), vis, sel, 4))


def test_masked_flow_eq6():
    flow, vis = _clip(L=3, H=6, W=6)
    m_g = _ref_global_visibility(vis)
    assert torch.equal(C.masked_flow(flow, vis), flow * m_g[None, :, :, None])


def test_training_conditions_consistent_with_parts():
    flow, vis = _clip(L=4, H=16, W=16, seed=9)
    t, m = C.training_conditions(flow, vis, k=4, r_min=0.5, generator=_gen(11))
    sel = C.sample_region_selection(16, 16, 4, 0.5, generator=_gen(11))
    assert torch.equal(t, C.region_trajectory(flow, vis, sel, 4))
    assert torch.equal(m, C.motion_mask(flow))


# ------------------------------------------------------------------ motion mask
def test_motion_mask_hand_made():
    L, H, W = 4, 3, 3
    flow = torch.zeros(L, H, W, 2)
    flow[:, 0, 0] = torch.tensor([3.0, 4.0])  # |f| = 5 every frame -> moving
    flow[:, 0, 1] = torch.tensor([0.0, 1.0])  # |f| = 1 every frame -> exactly at threshold: NOT moving
    flow[1:, 0, 2] = torch.tensor([0.0, 1.5])  # mean |f| = 3 * 1.5 / 4 = 1.125 -> moving
    flow[3, 1, 0] = torch.tensor([3.0, 0.0])  # mean = 0.75 -> not moving
    flow[3, 1, 1] = torch.tensor([4.0, 0.0])  # mean = 1.0 exactly -> not moving (strict >)
    m = C.motion_mask(flow)
    assert m.shape == (L, H, W, 1) and m.dtype == torch.bool
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[0, 0] = expected[0, 2] = True
    for i in range(L):
        assert torch.equal(m[i, :, :, 0], expected)
    # release: mean of squared magnitude; (0, 1): 1 -> False; (0, 1.5): 3*2.25/4 = 1.6875 -> True
    # and (4,0) in one frame: 16/4 = 4 > 1 -> True (differs from the paper variant)
    r = C.motion_mask(flow, variant="release")
    exp_r = expected.clone()
    exp_r[1, 1] = True
    exp_r[1, 0] = True  # 9 / 4 = 2.25 > 1
    assert torch.equal(r[0, :, :, 0], exp_r)


@pytest.mark.parametrize("variant", ["paper", "release"])
@pytest.mark.parametrize("scale", [0.05, 0.5, 1.0, 3.0, 30.0])
@pytest.mark.parametrize("threshold", [1.0, 0.5, 2.0])
def test_motion_mask_matches_loop(variant, scale, threshold):
    # scales span the "certain" and the "undecided" bounds of the fast implementation
    flow, _ = _clip(L=5, H=6, W=7, seed=int(scale * 10), scale=scale)
    assert torch.equal(C.motion_mask(flow, threshold, variant), _ref_motion_mask(flow, threshold, variant))


def test_motion_mask_dense_and_sparse_paths_agree_with_direct_formula():
    g = _gen(21)
    # mostly undecided pixels (dense path) and mostly certain pixels (sparse path)
    for scale in (0.6, 50.0):
        flow = torch.randn(8, 40, 40, 2, generator=g) * scale
        flow[:, :20] *= 0.01  # a static half
        direct = flow.square().sum(-1).sqrt().mean(0) > 1.0
        assert torch.equal(C.motion_mask(flow)[0, :, :, 0], direct)
        direct_r = flow.square().sum(-1).mean(0) > 1.0
        assert torch.equal(C.motion_mask(flow, variant="release")[0, :, :, 0], direct_r)


def test_motion_mask_nonpositive_threshold():
    flow = torch.zeros(2, 2, 2, 2)
    flow[1, 0, 0, 0] = 0.5
    assert bool(C.motion_mask(flow, threshold=-1.0).all())
    m0 = C.motion_mask(flow, threshold=0.0)[0, :, :, 0]
    assert bool(m0[0, 0]) and int(m0.sum()) == 1


# ------------------------------------------------------------------ release vs paper region rule
def test_release_differs_from_paper_constructed():
    L, H, W, k = 2, 4, 4, 2
    flow = torch.ones(L, H, W, 2)
    vis = torch.ones(L, H, W, dtype=torch.bool)
    vis[1, 0, 0] = False  # top-left pixel of cell (0,0) invisible -> release drops the whole cell
    vis[1, 3, 3] = False  # bottom-right pixel of cell (1,1) invisible -> release keeps it (pixel too)
    sel = torch.ones(2, 2, dtype=torch.bool)
    paper = C.region_trajectory(flow, vis, sel, k)
    rel = C.region_trajectory(flow, vis, sel, k, variant="release")
    # paper: only the two invisible pixels are zeroed
    assert int((paper[0, :, :, 0] == 0).sum()) == 2
    assert paper[0, 0, 0, 0] == 0 and paper[0, 3, 3, 0] == 0 and paper[0, 0, 1, 0] == 1
    # release: cell (0,0) fully dropped; invisible pixel (3,3) kept
    assert bool((rel[:, 0:2, 0:2] == 0).all())
    assert rel[0, 3, 3, 0] == 1 and rel[0, 0, 2, 0] == 1
    assert torch.equal(C.region_visibility(C.global_visibility(vis), k), torch.tensor([[False, True], [True, True]]))


# ------------------------------------------------------------------ user conditions (Sec. 3.4)
def _dist_to_segment(p, a, b):
    a, b, p = (torch.as_tensor(v, dtype=torch.float64) for v in (a, b, p))
    t = ((p - a) @ (b - a) / ((b - a) @ (b - a))).clamp(0, 1)
    return float((p - (a + t * (b - a))).norm())


def test_resample_straight_line():
    pts = [(2.0, 3.0), (12.0, 3.0)]
    pos = UC.resample_polyline(pts, 6)
    assert pos.shape == (6, 2)
    assert torch.allclose(pos[:, 0], torch.tensor([2.0, 4.0, 6.0, 8.0, 10.0, 12.0], dtype=torch.float64))
    assert torch.allclose(pos[:, 1], torch.full((6,), 3.0, dtype=torch.float64))


def test_resample_l_shape_equal_arc_spacing():
    # L-shaped polyline: 0,0 -> 6,0 -> 6,6 (length 12), with a duplicated vertex
    pts = [(0.0, 0.0), (3.0, 0.0), (6.0, 0.0), (6.0, 0.0), (6.0, 6.0)]
    L = 9
    pos = UC.resample_polyline(pts, L)
    assert torch.allclose(pos[0], torch.tensor([0.0, 0.0], dtype=torch.float64))
    assert torch.allclose(pos[-1], torch.tensor([6.0, 6.0], dtype=torch.float64))
    # every position lies on one of the two legs
    for p in pos:
        d = min(_dist_to_segment(p, (0, 0), (6, 0)), _dist_to_segment(p, (6, 0), (6, 6)))
        assert d < 1e-9
    # arc length along the polyline is j * 12 / (L - 1)
    arc = torch.where(pos[:, 1] == 0, pos[:, 0], 6.0 + pos[:, 1])
    assert torch.allclose(arc, torch.arange(L, dtype=torch.float64) * 12.0 / (L - 1))
    # single point / one frame
    assert torch.equal(UC.resample_polyline([(1.0, 2.0)], 4), torch.tensor([[1.0, 2.0]] * 4, dtype=torch.float64))
    assert torch.equal(UC.resample_polyline(pts, 1), torch.tensor([[0.0, 0.0]], dtype=torch.float64))


def test_conditions_from_user_block_and_mask():
    H, W, L, k = 20, 30, 5, 4
    brush = torch.zeros(H, W, dtype=torch.bool)
    brush[5:12, 8:20] = True
    traj = [[(10.0, 7.0), (14.0, 7.0)], [(25.0, 15.0), (25.0, 11.0), (21.0, 11.0)]]
    t, m = UC.conditions_from_user(traj, brush, L, k)
    assert t.shape == (L, H, W, 2) and t.dtype == torch.float32
    assert m.shape == (L, H, W, 1) and m.dtype == torch.bool
    for i in range(L):
        assert torch.equal(m[i, :, :, 0], brush)
    # trajectory 0: start pixel (row 7, col 10) -> block rows 5..8, cols 8..11; dx = 0..4 linear
    blk = t[:, 5:9, 8:12]
    for i in range(L):
        assert torch.allclose(blk[i, ..., 0], torch.full((4, 4), float(i)))
        assert torch.allclose(blk[i, ..., 1], torch.zeros(4, 4))
    # trajectory 1 (L-shape, length 8): frame 2 at arc 4 -> (25, 11) -> displacement (0, -4)
    assert torch.allclose(t[2, 13:17, 23:27], torch.tensor([0.0, -4.0]).expand(4, 4, 2))
    assert torch.allclose(t[4, 13:17, 23:27], torch.tensor([-4.0, -4.0]).expand(4, 4, 2))
    # nothing outside the two blocks
    outside = torch.ones(H, W, dtype=torch.bool)
    outside[5:9, 8:12] = False
    outside[13:17, 23:27] = False
    assert bool((t[:, outside] == 0).all())


def test_conditions_from_user_border_shifts_block_inside():
    H, W, L, k = 16, 16, 3, 8
    brush = torch.ones(H, W, dtype=torch.bool)
    t, _ = UC.conditions_from_user([[(1.0, 15.0), (3.0, 15.0)]], brush, L, k)  # near bottom-left corner
    nz = t[-1, :, :, 0] != 0
    rows, cols = nz.nonzero(as_tuple=True)
    assert int(nz.sum()) == k * k  # full block, not clipped
    assert int(rows.min()) == H - k and int(rows.max()) == H - 1
    assert int(cols.min()) == 0 and int(cols.max()) == k - 1
    assert UC.user_block(15, 1, 8, 16, 16) == (8, 0)
    assert UC.user_block(8, 8, 8, 16, 16) == (4, 4)  # centred: rows y - k//2 .. y - k//2 + k - 1


def test_conditions_from_user_cell_centre_reproduces_cell():
    # a trajectory starting at a cell centre fills exactly that training cell
    H, W, k = 16, 16, 4
    rows, cols = G.cell_centers(H, W, k)
    y, x = int(rows[2]), int(cols[1])
    t, _ = UC.conditions_from_user([[(float(x), float(y)), (x + 2.0, float(y))]],
                                  torch.ones(H, W, dtype=torch.bool), 2, k)
    sel = torch.zeros(4, 4, dtype=torch.bool)
    sel[2, 1] = True
    assert torch.equal(t[1, :, :, 0] != 0, C.pad_selection(sel, k))


def test_conditions_from_user_tensor_input_and_empty_list():
    brushed = torch.ones(8, 8, dtype=torch.bool)
    t1, _ = UC.conditions_from_user(torch.tensor([[[1.0, 1.0], [3.0, 1.0]]]), brushed, 3, 2)
    t2, _ = UC.conditions_from_user([[(1.0, 1.0), (3.0, 1.0)]], brushed, 3, 2)
    assert torch.equal(t1, t2)
    t3, _ = UC.conditions_from_user(torch.tensor([[[1.0, 1.0], [3.0, 1.0]]]).numpy(), brushed, 3, 2)
    assert torch.equal(t1, t3)
    brush = torch.zeros(8, 8, dtype=torch.bool)  # no brush and no trajectory: a "no motion" condition
    t0, m0 = UC.conditions_from_user([], brush, 3, 2)
    assert not bool(t0.any()) and not bool(m0.any())


def test_conditions_from_user_empty_brush_paper_error_or_release_blocks():
    H, W, L, k = 16, 16, 4, 4
    empty = torch.zeros(H, W, dtype=torch.bool)
    traj = [[(5.0, 6.0), (9.0, 6.0)], [(13.0, 13.0), (13.0, 10.0)]]
    # the paper: the user brushes the motion region; a drag without a brush is an error naming brush_mask
    _raises("brush_mask", UC.conditions_from_user, traj, empty, L, k)
    _raises("brush_mask", UC.conditions_from_user, traj, empty, L, k, empty_brush="error")
    # MotionPro (the authors' release): the dragged k x k blocks become the motion mask
    t, m = UC.conditions_from_user(traj, empty, L, k, empty_brush="trajectory_blocks")
    blocks = torch.zeros(H, W, dtype=torch.bool)
    blocks[4:8, 3:7] = True  # start pixel (row 6, col 5): rows 4..7, cols 3..6
    blocks[11:15, 11:15] = True  # start pixel (13, 13): rows/cols 11..14
    assert torch.equal(m[:, :, :, 0], blocks.expand(L, H, W))
    assert torch.equal(t, UC.conditions_from_user(traj, torch.ones(H, W, dtype=torch.bool), L, k)[0])
    # a brushed mask is used as it is, whatever empty_brush says
    brush = torch.zeros(H, W, dtype=torch.bool)
    brush[0, 0] = True
    _, m2 = UC.conditions_from_user(traj, brush, L, k, empty_brush="trajectory_blocks")
    assert torch.equal(m2[:, :, :, 0], brush.expand(L, H, W))
    _raises("empty_brush", UC.conditions_from_user, traj, brush, L, k, empty_brush="blocks")


def test_conditions_from_user_needs_two_frames():
    # a one-frame video has no motion: the drag must not be dropped silently
    brush = torch.ones(8, 8, dtype=torch.bool)
    _raises("num_frames", UC.conditions_from_user, [[(1.0, 1.0), (5.0, 1.0)]], brush, 1, 2)


def test_resample_require_motion_is_the_drawn_trajectory_rule():
    pts = [(0.0, 0.0), (3.0, 0.0), (7.0, 0.0)]
    assert torch.equal(UC.resample_polyline(pts, 8, require_motion=True), UC.resample_polyline(pts, 8))
    _raises("single click", UC.resample_polyline, [(3.0, 3.0), (3.0, 3.0)], 8, require_motion=True)
    _raises("single click", UC.resample_polyline, [(3.0, 3.0)], 8, require_motion=True)
    _raises("num_frames", UC.resample_polyline, pts, 1, require_motion=True)
    # numpy input works and the result converts to numpy
    out = UC.resample_polyline(np.array(pts), 8, require_motion=True).numpy()
    np.testing.assert_allclose(out[:, 0], np.linspace(0, 7, 8))


# ------------------------------------------------------------------ Gaussian baseline
def test_gaussian_peak_and_decay():
    H, W, L = 64, 96, 4
    traj = [[(40.0, 30.0), (52.0, 30.0), (52.0, 25.0)]]
    g = G.gaussian_trajectory(traj, H, W, L)
    assert g.shape == (L, H, W, 2)
    disp = UC.resample_polyline(traj[0], L) - torch.tensor([40.0, 30.0], dtype=torch.float64)
    assert torch.allclose(g[:, 30, 40], disp.float(), atol=1e-5)  # peak = displacement
    sigma = G.default_sigma(H, W)
    mag = g[-1].norm(dim=-1)
    # closed form along the row: exp(-d^2 / 2 sigma^2) times the peak
    for d in (1, 3, 7):
        expected = float(mag[30, 40]) * math.exp(-d * d / (2 * sigma**2))
        assert math.isclose(float(mag[30, 40 + d]), expected, rel_tol=1e-4)
    # monotone decay away from the start pixel and zero beyond the kernel window
    row = mag[30, 40:]
    assert bool((row[1:] <= row[:-1] + 1e-7).all())
    half = G.default_kernel_size(sigma) // 2
    assert float(mag[30, 40 + half]) > 0
    if 40 + half + 1 < W:
        assert float(mag[30, 40 + half + 1]) == 0.0


def test_gaussian_sigma_and_kernel_rules():
    assert math.isclose(G.default_sigma(320, 576), 20.0)
    assert G.default_kernel_size(20.0) == 199
    assert G.default_kernel_size(10.0) == 99
    assert G.default_kernel_size(0.1) == 3
    assert math.isclose(G.default_sigma(640, 1152), 40.0)


def test_gaussian_from_flow_matches_user_version():
    # the training version at one selected cell = the user version of a straight trajectory
    L, H, W, k = 3, 32, 32, 8
    flow = torch.zeros(L, H, W, 2)
    vis = torch.ones(L, H, W, dtype=torch.bool)
    rows, cols = G.cell_centers(H, W, k)
    y, x = int(rows[1]), int(cols[2])
    flow[1, y, x] = torch.tensor([2.0, -1.0])
    flow[2, y, x] = torch.tensor([4.0, -2.0])
    sel = torch.zeros(4, 4, dtype=torch.bool)
    sel[1, 2] = True
    got = G.gaussian_trajectory_from_flow(flow, vis, sel, k, sigma=3.0)
    ref = G.gaussian_trajectory([[(float(x), float(y)), (x + 4.0, y - 2.0)]], H, W, L, sigma=3.0)
    assert torch.allclose(got, ref, atol=1e-5)
    # an invisible centre or an unselected cell contributes nothing
    vis2 = vis.clone()
    vis2[2, y, x] = False
    assert not bool(G.gaussian_trajectory_from_flow(flow, vis2, sel, k, sigma=3.0).any())
    assert not bool(G.gaussian_trajectory_from_flow(flow, vis, ~sel, k, sigma=3.0).any())


def test_gaussian_superposition():
    H, W, L = 32, 32, 3
    a = [[(5.0, 5.0), (9.0, 5.0)]]
    b = [[(20.0, 22.0), (20.0, 26.0)]]
    both = G.gaussian_trajectory(a + b, H, W, L, sigma=4.0)
    separate = G.gaussian_trajectory(a, H, W, L, sigma=4.0) + G.gaussian_trajectory(b, H, W, L, sigma=4.0)
    assert torch.allclose(both, separate, atol=1e-5)


# ------------------------------------------------------------------ model input and metric
def test_to_model_input_layout():
    flow, vis = _clip(L=3, H=8, W=8)
    t = C.region_trajectory(flow, vis, torch.ones(2, 2, dtype=torch.bool), 4)
    m = C.motion_mask(flow)
    x = C.to_model_input(t, m)
    assert x.shape == (3, 3, 8, 8) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], t[..., 0]) and torch.equal(x[:, 1], t[..., 1])
    assert torch.equal(x[:, 2], m[..., 0].float())
    xs = C.to_model_input(t, m, scale=4.0)
    assert torch.allclose(xs[:, :2], x[:, :2] / 4.0) and torch.equal(xs[:, 2], x[:, 2])


def test_trajectory_field_error():
    flow, _ = _clip(L=3, H=6, W=6)
    region = torch.zeros(6, 6, dtype=torch.bool)
    region[1:4, 2:5] = True
    assert float(C.trajectory_field_error(flow, flow, region)) == 0.0
    zero = torch.zeros_like(flow)
    expected = flow.double().norm(dim=-1)[:, region].mean()
    assert math.isclose(float(C.trajectory_field_error(zero, flow, region)), float(expected), rel_tol=1e-6)
    assert math.isclose(float(C.trajectory_field_error(zero, flow, region, relative=True)), 1.0, rel_tol=1e-6)
    shifted = flow + torch.tensor([3.0, 4.0])
    assert math.isclose(float(C.trajectory_field_error(shifted, flow, region)), 5.0, rel_tol=1e-5)
    # region-wise trajectory is exact on its support, the Gaussian one is not
    vis = torch.ones(3, 6, 6, dtype=torch.bool)
    sel = torch.ones(3, 3, dtype=torch.bool)
    t = C.region_trajectory(flow, vis, sel, 2)
    assert float(C.trajectory_field_error(t, flow, region)) == 0.0
    gauss = G.gaussian_trajectory_from_flow(flow, vis, sel, 2, sigma=1.0)
    assert float(C.trajectory_field_error(gauss, flow, region)) > 0.0


# ------------------------------------------------------------------ inputs untouched
def test_inputs_not_modified():
    flow, vis = _clip(L=3, H=16, W=16, seed=4)
    sel = torch.rand(2, 2, generator=_gen(0)) > 0.5
    brush = torch.rand(16, 16, generator=_gen(1)) > 0.5
    traj = torch.tensor([[[3.0, 4.0], [8.0, 9.0]]])
    copies = [x.clone() for x in (flow, vis, sel, brush, traj)]
    for variant in C.VARIANTS:
        C.region_trajectory(flow, vis, sel, 8, variant=variant)
        C.motion_mask(flow, variant=variant)
        C.training_conditions(flow, vis, k=8, r_min=0.0, generator=_gen(0), variant=variant)
    C.global_visibility(vis)
    C.masked_flow(flow, vis)
    C.pad_selection(sel, 8)
    C.region_visibility(C.global_visibility(vis), 8)
    t, m = UC.conditions_from_user(traj, brush, 3, 4)
    G.gaussian_trajectory(traj, 16, 16, 3)
    G.gaussian_trajectory_from_flow(flow, vis, sel, 8)
    tc, mc = t.clone(), m.clone()
    C.to_model_input(t, m, scale=2.0)
    C.trajectory_field_error(t, flow, brush, relative=True)
    for orig, now in zip(copies, (flow, vis, sel, brush, traj)):
        assert torch.equal(orig, now)
    assert torch.equal(tc, t) and torch.equal(mc, m)
    # outputs are fresh tensors (writing them leaves the inputs alone)
    rt = C.region_trajectory(flow, vis, torch.ones(2, 2, dtype=torch.bool), 8)
    rt.add_(1)
    assert torch.equal(flow, copies[0])
    mm = C.motion_mask(flow)
    mm[0].fill_(True)
    assert not bool(mm[1].all()) or bool(C.motion_mask(flow).all())


# ------------------------------------------------------------------ error paths
def _raises(match, fn, *a, **kw):
    with pytest.raises(ValueError, match=match):
        fn(*a, **kw)


def test_errors_training_side():
    flow, vis = _clip(L=3, H=16, W=16)
    sel = torch.ones(2, 2, dtype=torch.bool)
    _raises("visibility", C.global_visibility, vis.float())
    _raises("visibility", C.global_visibility, vis[0])
    _raises("visibility", C.region_trajectory, flow, vis[:, :8], sel, 8)
    _raises("flow", C.region_trajectory, flow[..., :1], vis, sel, 8)
    _raises("flow", C.region_trajectory, flow.long(), vis, sel, 8)
    _raises("flow", C.region_trajectory, flow.numpy(), vis, sel, 8)
    bad = flow.clone()
    bad[1, 2, 3, 0] = float("nan")
    _raises("NaN or inf", C.region_trajectory, bad, vis, sel, 8)
    _raises("NaN or inf", C.motion_mask, bad)
    _raises("NaN or inf", C.training_conditions, bad, vis, k=8)
    bad[1, 2, 3, 0] = float("inf")
    _raises("NaN or inf", C.training_conditions, bad, vis, k=8)
    _raises("NaN or inf", G.gaussian_trajectory_from_flow, bad, vis, sel, 8)
    _raises("k", C.region_trajectory, flow, vis, sel, 5)
    _raises("k", C.training_conditions, flow, vis, k=3)
    _raises("k", C.sample_region_selection, 16, 12, 8, 0.5)
    _raises("k", C.region_trajectory, flow, vis, sel, 0)
    _raises("selection", C.region_trajectory, flow, vis, torch.ones(4, 4, dtype=torch.bool), 8)
    _raises("selection", C.region_trajectory, flow, vis, torch.ones(2, 2), 8)
    _raises("selection", C.pad_selection, torch.ones(2, 2), 8)
    _raises("r_min", C.sample_region_selection, 16, 16, 8, 1.5)
    _raises("r_min", C.sample_region_selection, 16, 16, 8, -0.1)
    _raises("r_min", C.training_conditions, flow, vis, k=8, r_min=2.0)
    _raises("ratio", C.sample_region_selection, 16, 16, 8, 0.5, ratio=1.2)
    _raises("variant", C.region_trajectory, flow, vis, sel, 8, variant="motionpro")
    _raises("variant", C.motion_mask, flow, variant="x")
    _raises("threshold", C.motion_mask, flow, threshold=float("nan"))
    _raises("global_vis", C.region_visibility, vis[0].float(), 8)
    _raises("at least one frame", C.motion_mask, flow[:0])


def test_errors_user_side():
    brush = torch.zeros(16, 16, dtype=torch.bool)
    _raises("empty", UC.conditions_from_user, [[]], brush, 4, 4)
    _raises("empty", UC.conditions_from_user, [torch.zeros(0, 2)], brush, 4, 4)
    _raises("outside", UC.conditions_from_user, [[(16.0, 3.0), (17.0, 3.0)]], brush, 4, 4)
    _raises("outside", UC.conditions_from_user, [[(3.0, -1.0)]], brush, 4, 4)
    _raises(r"trajectories\[1\]", UC.conditions_from_user, [[(1.0, 1.0)], [(-5.0, 1.0)]], brush, 4, 4)
    _raises("NaN or inf", UC.conditions_from_user, [[(1.0, float("nan"))]], brush, 4, 4)
    _raises(r"\(P, 2\)", UC.conditions_from_user, [[(1.0, 2.0, 3.0)]], brush, 4, 4)
    _raises("brush_mask", UC.conditions_from_user, [[(1.0, 1.0)]], brush.float(), 4, 4)
    _raises("brush_mask", UC.conditions_from_user, [[(1.0, 1.0)]], brush[None], 4, 4)
    _raises("k", UC.conditions_from_user, [[(1.0, 1.0)]], brush, 4, 17)
    _raises("num_frames", UC.conditions_from_user, [[(1.0, 1.0)]], brush, 0, 4)
    _raises("trajectories", UC.conditions_from_user, "abc", brush, 4, 4)
    _raises("outside", G.gaussian_trajectory, [[(40.0, 3.0)]], 16, 16, 4)
    _raises("sigma", G.gaussian_trajectory, [[(4.0, 3.0)]], 16, 16, 4, sigma=0.0)
    _raises("kernel_size", G.gaussian_trajectory, [[(4.0, 3.0)]], 16, 16, 4, kernel_size=4)
    flow, vis = _clip(L=3, H=8, W=8)
    t = C.region_trajectory(flow, vis, torch.ones(2, 2, dtype=torch.bool), 4)
    m = C.motion_mask(flow)
    _raises("motion_mask", C.to_model_input, t, m[:, :4])
    _raises("motion_mask", C.to_model_input, t, m.long())
    _raises("scale", C.to_model_input, t, m, scale=0.0)
    _raises("region_trajectory", C.to_model_input, t[..., :1], m)
    _raises("region", C.trajectory_field_error, t, flow, torch.zeros(8, 8, dtype=torch.bool))
    _raises("region", C.trajectory_field_error, t, flow, torch.ones(4, 4, dtype=torch.bool))
    _raises("condition", C.trajectory_field_error, t[:2], flow, torch.ones(8, 8, dtype=torch.bool))


def test_conditions_from_user_brush_fill_moves_brush_rigidly():
    H = W = 32
    brush = torch.zeros(H, W, dtype=torch.bool)
    brush[4:12, 4:12] = True      # region around the first drag's start
    brush[20:28, 20:28] = True    # region around the second drag's start
    t1 = torch.tensor([[8.0, 8.0], [14.0, 8.0]])   # right by 6 px
    t2 = torch.tensor([[24.0, 24.0], [24.0, 20.0]])  # up by 4 px
    T_b, M_b = UC.conditions_from_user([t1, t2], brush, 4, k=2)
    T_f, M_f = UC.conditions_from_user([t1, t2], brush, 4, k=2, fill="brush")
    assert torch.equal(M_b, M_f)
    # the paper's form: only the 2x2 blocks carry a displacement; the brush fill: every brushed pixel
    assert int((T_b[-1].abs().sum(-1) > 0).sum()) == 8
    assert bool((T_f[-1].abs().sum(-1) > 0)[brush].all())
    assert not bool((T_f[-1].abs().sum(-1) > 0)[~brush].any())
    assert torch.allclose(T_f[-1, 5, 5], torch.tensor([6.0, 0.0]))
    assert torch.allclose(T_f[-1, 26, 21], torch.tensor([0.0, -4.0]))
    # the blocks themselves are identical in both forms
    blocks = T_b[-1].abs().sum(-1) > 0
    assert torch.equal(T_f[:, blocks], T_b[:, blocks])
    with pytest.raises(ValueError, match="fill"):
        UC.conditions_from_user([t1], brush, 4, k=2, fill="region")
