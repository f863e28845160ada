#!/usr/bin/env bash
# Long toy-base UNet runs on a lent GPU (benchmarks/gpu_base.py), all at once, sized to a time budget, packed
# into $OUT for the trip back:
#
#   OUT=/tmp/gb VAE=runs/train-plain/vae/final bash benchmarks/gpu_base.sh [TRAIN_SECONDS]
#
# A 40-step probe of every run at once times a step as they will share the GPU; every run then gets the same
# max_steps, sized so that they finish in about TRAIN_SECONDS (default 380). STEPS=N skips the probe.
# RUNS: space-separated NAME:field=value,...; CLIPS (default 8192) synthetic training clips, drawn up front by
# WORKERS (default 6) processes per run, which then serve as its loader workers.
#
# Measured on one H200 (2026-12-04, results/gpu_base_probe.json): the toy UNet stage at batch 128 takes 0.33 s a
# step alone and 1.03-1.09 s with two runs sharing the GPU, so runs share it badly: one run at a time. At 0.33 s
# (388 clips/s, ~43x the 2-core CPU's 9.1) the ~1.1 M clip-samples the CPU error curve asks for take ~47 min.
set -u
OUT=${OUT:?set OUT to a folder}
VAE=${VAE:?set VAE to a finished toy VAE folder}
BUDGET=${1:-380}
STEPS=${STEPS:-}
read -r -a RUNS <<< "${RUNS:-attn:batch_size=128,lr=4e-4,unet_attention=all,p_mean=0.0}"
WORK=${WORK:-/tmp/gpu-base}
mkdir -p "$OUT" "$WORK/logs"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$OUT/plan.txt"
EXTRA=
if ! python3 -c "from remoco import photos; [photos.load_photo(n) for n in photos.TRAIN_PHOTOS]" 2>> "$OUT/plan.txt"; then
  EXTRA=photos=bench
  echo "a training photograph does not load here: every run takes photos=bench" | tee -a "$OUT/plan.txt"
fi
if [[ -z $STEPS ]]; then
  for run in "${RUNS[@]}"; do
    python3 benchmarks/gpu_base.py train --vae "$VAE" --work "$WORK/probe" --run "$run" \
      --set num_clips=256 num_workers=4 max_steps=40 warmup_steps=5 $EXTRA > "$WORK/logs/probe-${run%%:*}.log" 2>&1 &
  done
  wait
  STEP=0
  for run in "${RUNS[@]}"; do
    s=$(python3 -c "import csv;r=list(csv.DictReader(open('$WORK/probe/${run%%:*}/unet/log.csv')));print((float(r[-1]['seconds'])-float(r[9]['seconds']))/(len(r)-10))") \
      || { tail -20 "$WORK/logs/probe-${run%%:*}.log"; exit 1; }
    echo "probe ${run%%:*}: $s s/step" | tee -a "$OUT/plan.txt"
    STEP=$(python3 -c "print(max($STEP, $s))")
  done
  STEPS=$(python3 -c "print(max(100, min(40000, int($BUDGET / ($STEP * 1.1) / 100) * 100)))")
fi
echo "max_steps $STEPS for ${#RUNS[@]} runs (budget $BUDGET s)" | tee -a "$OUT/plan.txt"
for run in "${RUNS[@]}"; do
  timeout $((BUDGET * 3 / 2 + 60)) python3 benchmarks/gpu_base.py train --vae "$VAE" --work "$WORK" --run "$run" \
    --set num_clips=${CLIPS:-8192} num_workers=${WORKERS:-6} warmup_steps=200 max_steps=$STEPS \
    checkpoint_every=$((STEPS / 4)) $EXTRA > "$WORK/logs/${run%%:*}.log" 2>&1 &
done
wait
for run in "${RUNS[@]}"; do
  name=${run%%:*}
  tail -2 "$WORK/logs/$name.log" | tee -a "$OUT/plan.txt"
  python3 benchmarks/gpu_base.py pack --work "$WORK" --name "$name" --out "$OUT" || cp "$WORK/logs/$name.log" "$OUT/"
done
ls -la "$OUT"
