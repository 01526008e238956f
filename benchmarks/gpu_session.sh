#!/bin/bash
# One bounded GPU session: speed figures (alone on the GPU), then CPU-vs-CUDA agreement and PTQ grid runs side by side.
#
#   bash benchmarks/gpu_session.sh OUT_DIR BUDGET_S [GRID_LINE ...]
#
# OUT_DIR   where results go (JSON, JSON lines, logs; a tarball of the run checkpoints, split in 15 MB parts)
# BUDGET_S  seconds the whole script may take; every step is bounded so that it ends about 30 s before this
# GRID_LINE arguments of one benchmarks/ptq_cifar.py process each, e.g. "--bits 2/2 --methods geniem --n_calib 1024 --seeds 1"
#
# Data and weights: set METAAUG_DATA and METAAUG_WEIGHTS (a machine without ../shared); METAAUG_CACHE to reuse T's warm-ups.
# SPEED=0 skips the speed figures (they need the GPU alone; skip them when they are already recorded).
# Unfinished grid runs leave a checkpoint; unpack the tarball into the same --checkpoint_dir and run the same line again to resume them (CPU or GPU).
set -u
OUT=${1:?OUT_DIR}; BUDGET=${2:?BUDGET_S}; shift 2
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT/runs" "$OUT/ck"
left() { echo $((BUDGET - 30 - SECONDS)); }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))"; } > "$OUT/machine.txt" 2>&1
ARCHS="resnet20 resnet56"; [ "${SPEED:-1}" = 0 ] && ARCHS=""
for a in $ARCHS; do  # alone on the GPU: these are the timings
  OMP_NUM_THREADS=1 timeout -k 5 $(( $(left) / 4 )) python3 benchmarks/speed.py --device cuda --archs $a --skip memory \
      --rounds 3 --out "$OUT/speed_cuda_$a.json" > "$OUT/speed_$a.log" 2>&1; echo "speed $a rc=$? t=${SECONDS}s"
done
T=$(left)
OMP_NUM_THREADS=4 timeout -k 5 $T python3 benchmarks/device_agree.py --threads 4 --out "$OUT/device_agree.json" > "$OUT/agree.log" 2>&1 &
i=0
for line in "$@"; do
  i=$((i + 1))
  OMP_NUM_THREADS=1 timeout -s INT -k 30 $T python3 benchmarks/ptq_cifar.py --preset cpu --device cuda --no-compile --quiet \
      --checkpoint_dir "$OUT/ck" --checkpoint_every 250 $line --out "$OUT/runs/grid$i.jsonl" > "$OUT/runs/grid$i.log" 2>&1 &
done
wait; echo "runs done t=${SECONDS}s"
tar czf "$OUT/checkpoints.tgz" -C "$OUT" ck && split -b 15M -d "$OUT/checkpoints.tgz" "$OUT/checkpoints.tgz.part" && rm "$OUT/checkpoints.tgz"
ls -la "$OUT" "$OUT/runs"
