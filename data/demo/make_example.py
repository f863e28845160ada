"""Build data/demo/: the recorded drag-demo example (inputs in the bench schema, then the video), and the
drag on the rocket photograph that chapter 8 also measures.

Run from the repository root: `.venv/bin/python data/demo/make_example.py`, then re-execute
notebooks/08_drag_demo.ipynb. Uses the shipped toy checkpoints when present.

The recorded example (`example.json`) is a held-out synthetic object clip (make_clip seed 40005; the
training clips are make_clip seeds 0-1023, remoco.data.clip_seed with data seed 0) -- a scene of the kind the
toy model was trained on: its first frame is the reference image, the moving object is brushed and its true
path is the drag. `rocket.json` is a drag drawn with the mouse on the scikit-image rocket photograph, the
widget's default image.
"""
import json

import numpy as np
import torch

from remoco import bench as B
from remoco import data as D
from remoco import drag as G
from remoco import evaluate
from remoco.shipped import shipped_drag_settings
from remoco.user_conditions import resample_polyline
from remoco.video import write_video
from remoco.widgets import load_demo_pipeline

EXAMPLE_CLIP_SEED = 40005
# the shipped controller's k and inference form (the drag also fills the brushed region, chapter 5)
settings = shipped_drag_settings()

# --- the recorded example: a held-out synthetic scene
clip = D.make_clip(EXAMPLE_CLIP_SEED, kind="object")
path_xy, brush = evaluate.object_trajectory(clip)
drawn = [[round(float(x), 4), round(float(y), 4)] for x, y in path_xy]
ex = B.BenchExample(image=clip.video[0].numpy(), brush_mask=brush.numpy(),
                    trajectories=[resample_polyline(drawn, 8, require_motion=True).numpy()],
                    k=settings["k"], num_frames=8, seed=0, num_inference_steps=8, drawn_trajectories=[drawn],
                    source={"name": f"held-out synthetic object clip: remoco.data.make_clip({EXAMPLE_CLIP_SEED}, "
                                    "kind='object'); the drag is the object's true path"},
                    trajectory_fill=settings["trajectory_fill"])
path = B.save_bench_example(ex, "data/demo", "example")
print(path)

# --- the rocket photograph, brushed and dragged with the mouse (as in the widget)
img, mp = G.prepare_reference_image(D.sample_images(["rocket"])["rocket"], 64, 64)
s = G.DragState(64, 64)
s.begin_stroke("brush", 32.0, 21.0, radius=3.0)  # a thin vertical stroke along the body
for y in np.linspace(23, 57, 12):
    s.extend_stroke(32.0, float(y))
s.end_stroke()
s.begin_stroke("trajectory", 32.0, 42.0)  # from the body upwards (a slightly curved polyline, as drawn)
for x, y in [(32.2, 38.0), (32.6, 33.0), (33.0, 28.0), (33.2, 24.0)]:
    s.extend_stroke(x, y)
s.end_stroke(33.0, 20.0)
rocket = B.BenchExample(image=img, brush_mask=s.brush_mask, trajectories=s.trajectories(8), k=settings["k"],
                        num_frames=8, seed=0, num_inference_steps=8, drawn_trajectories=s.drawn_trajectories,
                        source=dict(mp.to_dict(), name="rocket (scikit-image sample, via remoco.data.sample_images)"),
                        trajectory_fill=settings["trajectory_fill"])
print(B.save_bench_example(rocket, "data/demo", "rocket"))

# --- the example's video, with whatever pipeline the demo would use (shipped checkpoints if present)
pipe, note = load_demo_pipeline()
print(note or "shipped checkpoints")
frames = B.run_bench_example(pipe, B.load_bench_example(path))
write_video("data/demo/example_video.mp4", torch.from_numpy(frames), 4)
meta = {"video": "example_video.mp4", "fps": 4, "pipeline": "untrained toy pipeline" if note else
        "shipped toy checkpoints (remoco.shipped.load_shipped_pipeline)", "inputs": "example.json"}
open("data/demo/example_video.json", "w").write(json.dumps(meta, indent=1) + "\n")
print(frames.shape)
