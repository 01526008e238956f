#!/usr/bin/env python
"""The QDrop mask as the quantizers draw it now (`keep_mask`: 64-bit draws, eight mask bits a byte; uint8 into compiled
kernels, x's dtype in eager ones) vs the float32 mask from 30-bit int32 draws it replaced: milliseconds per
reconstruction step per unit of ResNet-20 (synthetic images, W2A2), compiled (the `cpu` preset) and eager, interleaved
rounds of 40 steps from the same start. Writes benchmarks/results/qdrop_mask.json.

    OMP_NUM_THREADS=1 python benchmarks/qdrop_mask.py [units...]
"""
import json, sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import bench_setup, header, load, med, prepare_unit, timed, write_results
import metaaug.quantizers as Q
from metaaug.reconstruct import reconstruct
from metaaug.pipeline import preset
ITERS, ROUNDS, NEW, _BITS = 40, 4, Q.keep_mask, 30

def old_mask(like, p, dtype=None):
    "The mask before: in x's dtype (float32), from 30-bit int32 draws, whatever the caller asks."
    if p != 0.5: return (torch.rand(like.shape, device=like.device) < p).to(like.dtype)
    n = like.numel()
    words = torch.randint(0, 2**_BITS, ((n + _BITS - 1) // _BITS, 1), device=like.device, dtype=torch.int32)
    bits = (words >> torch.arange(_BITS, device=like.device, dtype=torch.int32)) & 1
    return bits.view(-1)[:n].view(like.shape).to(like.dtype)

def bench_unit(model, qm, calib, name):
    "Milliseconds per step with each mask, compiled and eager, and the speed-up (median over interleaved rounds)."
    d = prepare_unit(model, qm, name, calib, 32)
    unit = qm.unit(name)
    cfg = preset('cpu').recon.replace(iters=ITERS, log_every=ITERS, batch_size=32)
    state = {n: p.detach().clone() for n, p in unit.named_parameters()}
    def run(kind, compile_):
        Q.keep_mask = {'before': old_mask, 'now': NEW}[kind]
        try:
            with torch.no_grad():
                for n, p in unit.named_parameters(): p.copy_(state[n])
            return reconstruct(unit, d, cfg.replace(compile=compile_), name=name, generator=torch.Generator().manual_seed(0), show_progress=False)
        finally: Q.keep_mask = NEW
    row = {'unit': name}
    for compile_ in (True, False):
        for k in ('before', 'now'): run(k, compile_)  # warm-up (and compile)
        t = {k: [] for k in ('before', 'now')}
        for r in range(ROUNDS):
            for k in (list(t) if r % 2 == 0 else list(t)[::-1]): t[k].append(timed(lambda: run(k, compile_), torch.device('cpu')))
        row['compiled' if compile_ else 'eager'] = {k: round(1e3 * med(v) / ITERS, 2) for k, v in t.items()} | {
            'speedup': round(med([a / b for a, b in zip(t['before'], t['now'])]), 3)}
    return row | {'load': load()}

def main(units):
    torch.set_num_threads(1)
    model, qm, calib, _ = bench_setup('resnet20', 256, torch.device('cpu'))
    res = header(device='cpu') | {'iters_per_round': ITERS, 'rounds': ROUNDS, 'units': []}
    for name in units:
        res['units'].append(bench_unit(model, qm, calib, name)); print(json.dumps(res['units'][-1]), flush=True)
        write_results(Path(__file__).resolve().parent / 'results' / 'qdrop_mask.json', res)

if __name__ == '__main__':
    main(sys.argv[1:] or ['conv1', 'layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0', 'layer3.2', 'linear'])
