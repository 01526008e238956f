#!/usr/bin/env python
"""T's identity warm-up at N = 1,024 (real calibration images, ResNet-20's data): checking every image vs a subset.

Two interleaved rounds of 300 Adam steps each (threshold 1e-9, so no run stops early), `check_images` 1,024 (every
image, the old behaviour) and 256 (the default): time and final mean (T(x) - x)^2. Same T either way, since a check
only decides when to stop.

    OMP_NUM_THREADS=1 python benchmarks/warmup_speed.py benchmarks/results/warmup_speed.json
"""
import json, sys, time, torch, warnings
from metaaug.transform import UNet, TransformConfig, warmup_identity
from metaaug.pipeline import load_run_data
from metaaug.data import resolve_data_root
torch.set_num_threads(1); warnings.simplefilter('ignore')
(cx, _), _ = load_run_data('cifar10', resolve_data_root(None), 1024, 0, 16)
rows = []
for r in range(2):
    for ci in ((1024, 256) if r == 0 else (256, 1024)):
        torch.manual_seed(0); T = UNet(TransformConfig(16, 2))
        h = warmup_identity(T, cx, threshold=1e-9, max_steps=300, check_images=ci, progress=False, strict=False)
        rows.append({'check_images': ci, 'steps': h['steps'], 'time_s': h['time_s'], 'final_mse': h['final_mse'], 'loadavg': __import__('os').getloadavg()})
        print(rows[-1], flush=True)
json.dump(rows, open(sys.argv[1], 'w'), indent=1)
