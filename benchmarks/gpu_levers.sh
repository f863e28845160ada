#!/usr/bin/env bash
# Controller levers on a lent GPU: longer runs than the CPU allows, in parallel, then chapter 5's distance
# measurement (benchmarks/control_levers.py: 24 held-out object clips, the paper's block input and the brush fill).
#
#   OUT=/tmp/levers bash benchmarks/gpu_levers.sh [TRAIN_SECONDS]
#
# A 30-step probe times one controller step on the GPU; every run then gets the same max_steps, sized so that the
# runs, sharing the GPU, finish in about TRAIN_SECONDS (default 240). Each run trains on the GPU (accelerate picks
# it), then evaluates on the CPU with 2 threads. Results: $OUT/levers_<name>.json, $OUT/plan.txt and the logs in
# $OUT/logs.tgz.
# GPU weights are not bit-identical to a CPU run: these are sweeps, the shipped recipe stays the CPU one.
set -u
OUT=${OUT:?set OUT to a folder}
BUDGET=${1:-240}
STEPS=${STEPS:-}  # set: skip the probe and train every run this many steps
# FILL: the inference fills to measure (default: block brush)
# RUNS: space-separated NAME:field=value,... (control_levers.py --run); a name ending in bs8 gets half the steps
read -r -a RUNS <<< "${RUNS:-dense-long:r_min=0 dense-long-joint:unet_lr=1e-4 dense-long-lr3e-4:lr=3e-4 \
dense-long-release:sites=release sparse-long:r_min=0.95,r_max=1.0 dense-long-bs8:batch_size=8}"
BASE=data/checkpoints/toy-base
WORK=/tmp/levers-work
LOGS=/tmp/levers-logs
mkdir -p "$OUT" "$WORK" "$LOGS"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [[ -z $STEPS ]]; then
python3 - "$WORK/probe" "$BASE" > "$LOGS/probe.log" 2>&1 <<'EOF'
import sys, time, torch
from remoco.config import preset_config
from remoco.train import train
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
cfg = preset_config("toy-cpu", "controller", base=sys.argv[2], out_dir=sys.argv[1], max_steps=30, progress=False)
t = time.perf_counter(); train(cfg); print("probe_seconds", time.perf_counter() - t)
EOF
tail -3 "$LOGS/probe.log"
STEP=$(python3 -c "import csv;r=list(csv.DictReader(open('$WORK/probe/controller/log.csv')));print((float(r[-1]['seconds'])-float(r[9]['seconds']))/(len(r)-10))") || exit 1
STEPS=$(python3 -c "print(max(300, min(5000, int($BUDGET / ($STEP * ${#RUNS[@]} / 3.0) / 100) * 100)))")
echo "seconds per step (alone): $STEP -> max_steps $STEPS for ${#RUNS[@]} runs" | tee "$OUT/plan.txt"
fi
for run in "${RUNS[@]}"; do
  name=${run%%:*}
  extra=,max_steps=$STEPS
  [[ $name == *bs8 ]] && extra=,max_steps=$((STEPS / 2))
  [[ $run == *max_steps=* ]] && extra=  # the run names its own length
  OMP_NUM_THREADS=2 python3 benchmarks/control_levers.py --base $BASE --work "$WORK" --run "$run$extra" --clips 24 \
    --fill ${FILL:-block brush} --threads 2 --out "$OUT/levers_$name.json" > "$LOGS/$name.log" 2>&1 &
done
wait
grep -h "ratio" "$LOGS"/*.log | sort -u | tee -a "$OUT/plan.txt"
tar czf "$OUT/logs.tgz" -C "$LOGS" .
