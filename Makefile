# ReMoCo Book — two commands on a fresh machine (see README.md):
#   make book   create .venv, install, execute every chapter, build the HTML book in _build/html
#   make test   create .venv, install, run the unit tests, execute every chapter once and check its outputs
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: install lint test test-unit test-chapters test-browser demo-screenshot book book-from-tested clean-book bench \
	notebooks reproduce comparison seed-runs steering

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (remoco)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# ruff (configured in pyproject.toml): line length, import order, unused names.
lint: install
	$(VENV)/bin/ruff check .

# Lint, unit tests and every chapter executed once with its quick (default) parameters and compared with its
# stored outputs (remoco/book_check.py): glued values and cells tagged check-output, numbers from sampling, training,
# trackers and flow within the tolerance table of remoco/tolerances.py, everything else exactly.
# The unit tests run beside the chapters, not before them: the chapters start longest first, and while the longest
# (chapter 5) runs alone the other core would idle. Their report is printed when both are done (UNIT_LOG).
UNIT_LOG := _build/unit-tests.log
test: lint
	@mkdir -p $(dir $(UNIT_LOG))
	@$(PY) -m pytest tests -m "not browser" -q -p no:cacheprovider > $(UNIT_LOG) 2>&1 & unit=$$!; \
	$(MAKE) --no-print-directory test-chapters; chapters=$$?; \
	wait $$unit; unit=$$?; echo "== unit tests ($(UNIT_LOG)):"; cat $(UNIT_LOG); \
	echo "== unit tests rc $$unit, chapters rc $$chapters"; test $$unit -eq 0 -a $$chapters -eq 0

# Every chapter executed once into $(EXECUTED) (CHAPTER_JOBS at a time, longest first, each on one core; the
# environment variable REMOCO_THREADS=n forces every chapter's thread count, e.g. `REMOCO_THREADS=2 make test
# CHAPTER_JOBS=1` checks the numbers against another float reduction order), then compared with notebooks/.
EXECUTED := _build/executed
CHAPTER_JOBS ?= 2
test-chapters: install
	$(PY) -m remoco.book_check execute --out $(EXECUTED) --jobs $(CHAPTER_JOBS)
	$(PY) -m remoco.book_check compare --fresh $(EXECUTED)

test-unit: install
	$(PY) -m pytest tests -m "not browser and not notebook" -q -p no:cacheprovider

BOOK_SOURCES := $(NOTEBOOKS) $(wildcard book/*.md book/_static/*) book/_toc.yml _config.yml

# The drag demo driven by a real (headless) Chromium through JupyterLab, then every page of the built book
# (offline, no console error, media loaded, nothing wider than the column). The book is (re)built first
# when _build/html is missing or older than its sources.
test-browser: install _build/html/index.html
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	REMOCO_REQUIRE_BROWSER=1 $(PY) -m pytest tests/browser -m browser -q -p no:cacheprovider

# Re-shoot the drag demo widget in JupyterLab and save it as the book's asset data/demo/drag_demo_widget.png.
demo-screenshot: install
	REMOCO_UPDATE_ASSETS=1 REMOCO_REQUIRE_BROWSER=1 $(PY) -m pytest tests/browser/test_drag_demo.py -m browser -q -p no:cacheprovider

# REMOCO_PROGRESS=off: no tqdm widgets in the executed chapters (their state would need ipywidgets from a CDN);
# remoco._sphinx_book sets it too when the book is built by hand.
book: install
	REMOCO_PROGRESS=off $(VENV)/bin/jupyter-book build . --toc book/_toc.yml --config _config.yml
	@echo "Book: $(CURDIR)/_build/html/index.html"

# The book from the chapters `make test` executed and checked (CI: each chapter runs once), execution switched off.
book-from-tested: install
	test -f $(EXECUTED)/timings.json || { echo "no executed chapters in $(EXECUTED): run make test first"; exit 1; }
	$(PY) -m remoco.book_check stage --fresh $(EXECUTED) --out _build/book-src
	REMOCO_PROGRESS=off $(VENV)/bin/jupyter-book build $(CURDIR)/_build/book-src \
		--toc $(CURDIR)/_build/book-src/book/_toc.yml --config $(CURDIR)/_build/book-src/_config.yml \
		--path-output $(CURDIR)
	@echo "Book: $(CURDIR)/_build/html/index.html"

_build/html/index.html: $(STAMP) $(BOOK_SOURCES)
	$(MAKE) book

clean-book:
	rm -rf _build

# Re-execute every chapter in place with its default parameters (refreshes the stored outputs that make test checks;
# run after changing the library or the shipped checkpoints).
notebooks: install
	for nb in $(NOTEBOOKS); do echo "== $$nb"; REMOCO_PROGRESS=off $(VENV)/bin/papermill --cwd notebooks -k python3 "$$nb" "$$nb" || exit 1; done

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The evaluation chapters' experiments (Tables 1-3, Fig. 7, Fig. 9; remoco/reproduce.py): train the controllers
# (resumable, JOBS processes of one thread), evaluate on the toy bench, write $(REPRO_WORK)/results/<table>.json and
# compare them with the stored results/ (`python -m remoco.reproduce plan` lists the experiments and their CPU time).
# QUICK=1: one seed, 2 training steps, 2 values per Fig. 7 sweep, 4 entries per bench set, 2 sampler steps -- about
# 2 minutes, every code path; compared with results/quick.
REPRO_WORK ?= runs/reproduce
JOBS ?= 2
reproduce: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m remoco.reproduce run $(if $(QUICK),--quick) --jobs $(JOBS) \
		--work $(REPRO_WORK)
	$(PY) -m remoco.reproduce check $(if $(QUICK),--quick) --work $(REPRO_WORK)

# Chapter 6's main comparison (remoco/comparison.py): MD-Vid validated on known answers for every bench entry
# (results/md_validation.json, ~9 min), the controllers it adds to the shipped ones (training seed 0), trained with
# the shipped recipe JOBS at a time (seed-runs: the runs comparison.SYSTEMS loads, as listed by
# `python -m remoco.comparison seed-runs` -- seeds 1-3 of ReMoCo, 1-2 of the Gaussian baseline and of the
# trajectory-only controller, 0-3 of the Gaussian baseline in ReMoCo's dense regime, 0-3 of C5's concatenation and
# summation variants: ~20-25 min each at one thread),
# then every system sampled and scored on all 200 entries (results/comparison.json, ~3-5 min per system) and C2's
# systems on the object set's camera entries brushed on the object only (results/comparison_camera.json, ~30 s per
# system). Resumable: a trained seed is not trained again, a scored system not scored again.
SEEDS_WORK := runs/seeds
FAST := --set mixed_precision=auto fused_adam=true
TRAIN1 := OMP_NUM_THREADS=1 $(PY) -m remoco.cli train --no-progress
C2_SYSTEMS := ground_truth base gaussian remoco remoco_s1 remoco_s2 traj_only traj_only_s1 traj_only_s2
# <variant>-s<seed>: the variant's shipped config (concat / sum: ReMoCo's, with only the feature injection changed;
# gaussian_dense: the Gaussian baseline's in ReMoCo's dense regime), trained with that seed
run_variant = $(firstword $(subst -s, ,$(1)))
run_config = $(if $(filter concat sum,$(1)),remoco,$(subst gaussian_dense,gaussian,$(1)))
$(SEEDS_WORK)/%/controller/final/controller/config.json: | install
	$(TRAIN1) --config data/checkpoints/$(call run_config,$(call run_variant,$*))-toy/config.yaml \
		$(FAST) $(if $(findstring gaussian_dense,$*),r_min=0.0 r_max=0.0) \
		$(if $(filter concat sum,$(call run_variant,$*)),variant=$(call run_variant,$*)) \
		--seed $(lastword $(subst -s, ,$*)) --out $(SEEDS_WORK)/$*
seed-runs: install
	$(MAKE) --no-print-directory -j $(JOBS) $$($(PY) -m remoco.comparison seed-runs)
comparison: install
	OMP_NUM_THREADS=1 $(PY) benchmarks/md_validation.py --out results/md_validation.json
	$(MAKE) seed-runs
	OMP_NUM_THREADS=1 $(PY) -m remoco.comparison run --out results/comparison.json
	OMP_NUM_THREADS=1 $(PY) -m remoco.comparison run --sets camera --systems $(C2_SYSTEMS) \
		--work runs/comparison_camera --out results/comparison_camera.json

# Chapter 7's C3 / C4 measures (remoco/steering.py): chapter 5's ReMoCo recipe trained in its dense regime and in the
# paper's sparse regime with every 300th checkpoint kept (~25 min each at one thread, JOBS at a time), each checkpoint
# scored on 48 object-set entries with its trajectory gain (results/steering_curve.json, ~15 min), and the trajectory
# gain of every Fig. 7 controller of `make reproduce` (results/condition_ablation.json, ~15 min; needs its runs).
CURVE_WORK := runs/curve
$(CURVE_WORK)/%-s0/controller/final/controller/config.json: | install
	OMP_NUM_THREADS=1 $(PY) -m remoco.steering train --regime $* --work $(CURVE_WORK)
steering: install
	$(MAKE) -j $(JOBS) $(foreach r,dense sparse,$(CURVE_WORK)/$(r)-s0/controller/final/controller/config.json)
	OMP_NUM_THREADS=1 $(PY) -m remoco.steering curve --work $(CURVE_WORK) --out results/steering_curve.json
	OMP_NUM_THREADS=1 $(PY) -m remoco.steering ablation --out results/condition_ablation.json
