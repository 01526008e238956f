#!/usr/bin/env python
"""T in bfloat16 (`TransformConfig.compute_dtype`) against float32: speed, warm-up length, meta-iteration time (issue 7).

- micro: T's forward + backward (batch 16, as a meta iteration) and one identity warm-up step (batch 32), float32 vs
  bfloat16, both channels-last (as the pipeline runs T), the same weights; interleaved rounds, medians.
- meta: a whole `meta_step` + `t_gradient` of the chosen flavour at the `cpu` budget on the given units of ResNet-20
  (synthetic images, as `meta_stages.py`), float32 vs bfloat16 T, interleaved, medians.
- warmup: `warmup_identity` with the `cpu` budget's settings (threshold 1e-2, plateau patience 500, at most 5,000
  steps) on real CIFAR-10 calibration images (`--n_calib`, seed `--seed`), float32 vs bfloat16 from the same initial T:
  steps, seconds, final mean (T(x) - x)^2. No cache is read or written.

Every figure carries os.getloadavg() at the time it was measured.

    OMP_NUM_THREADS=1 python benchmarks/t_dtype.py                       # ~10 min at 1 thread
    OMP_NUM_THREADS=1 python benchmarks/t_dtype.py --skip warmup --units layer2.0
"""
import argparse, json, warnings

import torch

from speed import HERE, bench_setup, header, load, prepare_unit, write_results
from meta_stages import interleaved
from metaaug.capture import tail_after
from metaaug.data import resolve_data_root
from metaaug.meta import MetaContext, fp_outputs, meta_step, t_gradient, theta_groups
from metaaug.models import fold_bn
from metaaug.pipeline import load_run_data, preset
from metaaug.transform import UNet, _warmup_step, warmup_identity
from metaaug.wrap import set_mode

CL, DTYPES = torch.channels_last, ('float32', 'bfloat16')

def twins(cfg, seed=0):
    "A float32 and a bfloat16 T with the same weights, channels-last."
    torch.manual_seed(seed); Ts = {d: UNet(cfg.replace(compute_dtype=d)).to(memory_format=CL) for d in DTYPES}
    Ts['bfloat16'].load_state_dict(Ts['float32'].state_dict())
    return Ts

def bench_micro(a, cfg, calib):
    Ts = twins(cfg)
    fb = interleaved({d: (lambda T=T: T(calib[:16]).sum().backward()) for d, T in Ts.items()}, a.rounds, a.reps)
    opts, g = {d: torch.optim.Adam(T.parameters(), 1e-3) for d, T in Ts.items()}, torch.Generator().manual_seed(0)
    warm = interleaved({d: (lambda d=d: _warmup_step(Ts[d], opts[d], calib, torch.randperm(len(calib), generator=g)[:32], 'cpu')) for d in Ts}, a.rounds, a.reps)
    return {"T's forward + backward, batch 16 (ms)": fb, 'warm-up step, batch 32 (ms)': warm}

def bench_meta(a, mcfg):
    model, qm, calib, weights = bench_setup('resnet20', a.n_calib, torch.device('cpu'))
    fp = fold_bn(model, within=qm.units); logits, feats = fp_outputs(fp, calib, 32)
    rows = []
    for name in qm.units:
        d = prepare_unit(model, qm, name, calib, 32)
        if name in a.units:
            set_mode(qm.unit(name), 'soft', qdrop=True)
            ctx = MetaContext(fp, qm, name, calib, d.x_q, logits, tail_after(fp, name), feats)
            groups, gens = theta_groups(ctx.unit), {k: torch.Generator().manual_seed(0) for k in DTYPES}
            theta = {n: p.detach().clone().requires_grad_() for n, p in ctx.unit.named_parameters() if n in groups}
            Ts = twins(mcfg.transform)
            for T in Ts.values(): T.train()
            def it(k):
                _, out = meta_step(ctx, Ts[k], theta, 5.0, mcfg, gens[k], groups)
                t_gradient(out['parts'], list(Ts[k].parameters()), mcfg.val_share)
            rows.append({'unit': name, 'weights': weights, **interleaved({k: (lambda k=k: it(k)) for k in DTYPES}, a.rounds, a.meta_reps)})
            print(json.dumps(rows[-1]), flush=True)
        set_mode(qm.unit(name), 'hard')
    return rows

def bench_warmup(a, mcfg):
    (cx, _), _ = load_run_data('cifar10', resolve_data_root(None), a.n_calib, a.seed, 16)
    rows = []
    for d in (DTYPES if a.seed % 2 == 0 else DTYPES[::-1]):
        torch.manual_seed(a.seed); T = UNet(mcfg.transform.replace(compute_dtype=d))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            h = warmup_identity(T, cx, threshold=mcfg.warmup_threshold, max_steps=mcfg.warmup_steps, patience=mcfg.warmup_patience,
                                seed=a.seed, progress=False, strict=False)
        rows.append({'compute_dtype': d, 'n_calib': a.n_calib, 'seed': a.seed, **{k: h[k] for k in ('steps', 'stopped', 'final_mse', 'time_s')},
                     'ms_per_step': 1e3 * h['time_s'] / max(h['steps'], 1), 'load': load()})
        print(json.dumps(rows[-1]), flush=True)
    return rows

def main(a):
    torch.set_num_threads(a.threads)
    mcfg = preset('cpu', meta=a.flavour).meta
    res = header(transform=mcfg.transform.to_dict())
    if 'micro' not in a.skip:
        _, _, calib, _ = bench_setup('resnet20', a.n_calib, torch.device('cpu'))
        res['micro'] = bench_micro(a, mcfg.transform, calib); print(json.dumps(res['micro']), flush=True)
    if 'meta' not in a.skip: res['meta'] = bench_meta(a, mcfg)
    if 'warmup' not in a.skip: res['warmup'] = bench_warmup(a, mcfg)
    write_results(a.out, res)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--units', nargs='+', default=['layer1.0', 'layer2.0', 'layer3.0'])
    p.add_argument('--flavour', default='tuned', help='MetaAug flavour (a key of META_PRESETS) at the cpu budget')
    p.add_argument('--rounds', type=int, default=4); p.add_argument('--reps', type=int, default=10, help='calls per micro round')
    p.add_argument('--meta_reps', type=int, default=5, help='meta iterations per round')
    p.add_argument('--n_calib', type=int, default=256); p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--skip', nargs='*', default=[], choices=['micro', 'meta', 'warmup'])
    p.add_argument('--out', default=str(HERE / 'results' / 't_dtype.json'))
    main(p.parse_args())
