#!/bin/bash
# One bounded GPU session: reconstruction speed (alone on the GPU), then grid runs side by side, every run checkpointed.
#
#   bash benchmarks/gpu_session.sh OUT_DIR BUDGET_S [GRID_ARGS ...]
#
# OUT_DIR    where results go (JSON, JSON lines, logs; the runs' checkpoints as a tarball split in 15 MB parts)
# BUDGET_S   seconds the whole script may take; every step is bounded so that it ends about 30 s before this
# GRID_ARGS  one metaaug_experiments argument list per grid process, e.g.
#            "--methods geniem metaaug --arch mobilenet_v2_tf --preset imagenet-cpu --set recon.iters=2000 --n_calib 64 --seeds 0-4"
#
# Data and weights: set METAAUG_DATA and METAAUG_WEIGHTS (a machine without ../shared); METAAUG_CACHE to reuse T's warm-ups.
# SPEED=0 skips the speed figures. Unfinished grid runs leave checkpoints: unpack the tarball into OUT_DIR/ck and run the
# same grid again (here or on the CPU) to resume them.
set -u
OUT=${1:?OUT_DIR}; BUDGET=${2:?BUDGET_S}; shift 2
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT/runs" "$OUT/ck"
left() { echo $((BUDGET - 30 - SECONDS)); }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))"; } > "$OUT/machine.txt" 2>&1
if [ "${SPEED:-1}" != 0 ]; then  # alone on the GPU: these are the timings
  timeout -k 5 $(( $(left) / 4 )) python3 benchmarks/speed.py recon --device cuda --arch mobilenet_v2_tf --size 224 \
      --units features.1 features.2 features.3 features.4 features.7 features.14 --variant gpu=.:compile=0,channels_last=1 \
      --out "$OUT/speed_recon_cuda.json" > "$OUT/speed.log" 2>&1; echo "speed rc=$? t=${SECONDS}s"
fi
T=$(left); i=0
for args in "$@"; do
  i=$((i + 1))
  OMP_NUM_THREADS=2 timeout -s INT -k 30 $T metaaug_experiments $args --device cuda --workers 1 --checkpoints "$OUT/ck" \
      --quiet --out "$OUT/runs/grid$i.jsonl" > "$OUT/runs/grid$i.log" 2>&1 &
done
wait; echo "runs done t=${SECONDS}s"
tar czf "$OUT/checkpoints.tgz" -C "$OUT" ck && split -b 15M -d "$OUT/checkpoints.tgz" "$OUT/checkpoints.tgz.part" && rm "$OUT/checkpoints.tgz"
ls -la "$OUT" "$OUT/runs"
