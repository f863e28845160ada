"""remoco — a reproduction of *Region-wise Motion Controller for Image-to-Video Generation* (ReMoCo).

``import remoco`` stays cheap (torch and diffusers load only with the modules that need them): import the
modules you use, e.g. ``from remoco import conditions``. The data path of the method, in order:

====================  ===========================================================================================
``data``              synthetic clips with exact flow and visibility
``photos``            the photographs the packages ship offline; bench, training and held-out sets
``video``             read / write / resize clips; uint8 conversion
``flow``              optical flow and visibility from the first frame (Eq. 4; DOT / CoTracker adapters)
``checks``            argument checks shared by the condition modules (clear ValueErrors)
``conditions``        global visibility, region selection, region-wise trajectory, motion mask (Sec. 3.2)
``user_conditions``   a user's drags and brush as region-wise trajectory and motion mask (Sec. 3.4)
``gaussian``          the Gaussian-filtered point-trajectory baseline (DragNUWA / MotionCtrl)
``edm``               SVD's EDM preconditioning, noise levels and loss (Eq. 1-3)
``models``            the toy and paper-scale SVD components (diffusers classes)
``toy_vae``           the toy's VAEs: SVD's temporal decoder (settable GroupNorm size), a plain autoencoder
``controller``        motion encoder, adaptive feature modulation (Eq. 8); save / load a controller
``lora``              LoRA on the UNet's attention (Eq. 9); the UNet weights a jointly trained controller carries
``pipeline``          :class:`~remoco.pipeline.ReMoCoPipeline` (Sec. 3.4)
``config``            :class:`~remoco.config.TrainConfig`, presets, the toy-vs-paper recipe table
``ema``               an exponential moving average of the trained weights, kept in the checkpoints
``clips``             the clips a training run reads, in a seeded order
``objective``         the EDM training batch and the motion condition of one training step
``runs``              seeds, provenance, atomic writes, checkpoints and logs of a run
``speed``             bf16 where the processor computes it natively, fp32 elsewhere (training and sampling)
``train``             the training loop and stages (``accelerate``)
``shipped``           the shipped toy checkpoints: ship and load
``sampling``          many videos at once, each as if sampled alone: the evaluations' sampler
``fidelity``          what the toy keeps of its input: VAE reconstruction, first frame, object colour
``restart``           where along the noise scale a base loses the object: sampling restarted from a noised clip
``tracking``          MD-Vid: trackers, the no-motion ceiling and share of the way; known-answer validation
``evaluate``          chapter 5's trajectory following, generated motion, condition ablation
``metrics``           the paper's metrics (MD-Vid, MD-Img, Frame Consis., FID, FVD, flow magnitude), labelled
``drawing``           figures: loss curves, trajectories over frames, conditions
``drag``              drag input: coordinates, brush strokes, :class:`~remoco.drag.DragState`
``bench``             bench examples (image, brush, trajectories) on disk
``benchset``          bench sets: the toy ReMoCo-Bench, DragBench / MC-Bench converters (Sec. 4.1, App. A)
``bench_eval``        one system on one bench set: seeded videos, per-entry metrics, FID / FVD (Sec. 4.1)
``reproduce``         the experiment runner of the evaluation chapters (Tables 1-3, Fig. 7, Fig. 9): ``make reproduce``
``report``            results beside the paper's numbers, Fig. 7 / Fig. 9 plots, a verdict per claim
``comparison``        chapter 5's models on every bench entry, scored and paired per entry
``verdicts``          the comparison's questions decided over training seeds; its tables and figure
``steering``          when a controller uses its trajectory: trajectory gain by noise level, steering curve (C3 / C4)
``decide``            paired intervals (t, two-level bootstrap), verdicts, smallest detectable effect
``widgets``           the ipywidgets drag demo
``cli``               the ``remoco`` command line
``book_utils``        how chapters show library source, videos and tables; a chapter's seeds and threads
``book_check``        the chapters executed once and compared with their stored outputs; the book staged from them
``tolerances``        how close a re-run must come to a stored number, per quantity (chapters, ``make reproduce``)
====================  ===========================================================================================
"""

from remoco._progress import configure_progress as _configure_progress

__version__ = "0.1.0"

# $REMOCO_PROGRESS=text|off turns tqdm's notebook widgets into text or off (the book build sets "off").
_configure_progress()

