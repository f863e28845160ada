"""Tests of remoco.drawing: the one trajectory renderer behind overlay_trajectory / render_inputs /
render_last_frame."""

import numpy as np
import pytest
import torch

from remoco import drawing as R
from remoco.drag import DEFAULT_MAGNIFICATION as M
from remoco.drag import DragState


def test_render_inputs_marks_mask_and_block():
    img = np.full((64, 64, 3), 128, np.uint8)
    s = DragState(64, 64)
    s.add_brush_stroke([[10, 10]], 3)
    s.add_trajectory([[40, 40], [50, 40]])
    rt, mm = s.conditions(8, 8)
    pic = R.render_inputs(img, s.brush_mask, s.drawn_trajectories, M, rt, mm, 8)
    assert pic.shape == (384, 384, 3)
    # brushed pixel (10, 10) tinted blue, unbrushed far pixel unchanged
    c = pic[10 * M + 3, 10 * M + 3]
    assert c[2] > c[0] + 30
    assert tuple(pic[60 * M + 3, 5 * M + 3]) == (128, 128, 128)
    # the k x k block around (40, 40) starts at column 36: its outline is drawn at canvas x = 36*M
    assert tuple(pic[38 * M, 36 * M]) != (128, 128, 128)
