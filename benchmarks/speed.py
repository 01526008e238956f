#!/usr/bin/env python
"""Speed benchmark: every figure is a ratio or a time measured in this run, with interleaved rounds, on one thread.

- recon: seconds per Genie-M reconstruction step of chosen units (synthetic images of any side, random weights), for
  one or more *variants* timed in rounds that alternate between them. A variant is a source tree of metaaug (this
  checkout, or an older commit checked out elsewhere: `git worktree add /tmp/base e3d8119`) and the settings it runs
  (`key=value` of ReconConfig / QuantConfig fields that tree knows). Each variant runs in a process of its own, so two
  versions of the code are compared side by side in one run:

    OMP_NUM_THREADS=1 python benchmarks/speed.py recon --arch mobilenet_v2_tf --size 224 --units features.1 features.2 \\
        --variant today=/tmp/base:compile=1 --variant now=.:compile=1,channels_last=1 --out benchmarks/results/speed/recon.json

- meta: a MetaAug meta iteration with `meta_step` (caching, FP BatchNorms folded, T channels-last) against the naive
  full-forward step (`naive_meta_step`), same draws, the losses checked equal first; and the most that not
  recomputing can give in multiply-adds (`caching_bound`).

    OMP_NUM_THREADS=1 python benchmarks/speed.py meta --arch resnet20 --units layer1.0 layer2.0 --flavours official tuned

Every record carries the command, the versions (CPU model, commit) and the load average at each round.
"""
import argparse, copy, json, os, statistics, subprocess, sys, time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

def load(): return {'loadavg': [round(v, 2) for v in os.getloadavg()], 'threads': torch.get_num_threads()}
def med(xs): return statistics.median(xs)

# ---------------------------------------------------------------- a variant's worker (runs inside the variant's source tree)

WORKER = r'''
import json, sys, time, inspect, torch
from metaaug.models import build_model
from metaaug.fixtures import tiny_images
from metaaug.wrap import QuantConfig, quantize_model, set_mode, calibrating
from metaaug.capture import cache_unit
from metaaug.reconstruct import ReconConfig, reconstruct
from metaaug.core import keep_freed_memory
try: from metaaug.runs import versions
except ImportError: from metaaug.pipeline import versions
keep_freed_memory(); torch.manual_seed(0); torch.set_num_threads(1)
job = json.loads(sys.argv[1])
fields = lambda cls: set(getattr(cls, '__dataclass_fields__'))
qkw = {k: v for k, v in job['settings'].items() if k in fields(QuantConfig)}
rkw = {k: v for k, v in job['settings'].items() if k in fields(ReconConfig)}
unknown = set(job['settings']) - set(qkw) - set(rkw)
if unknown: raise SystemExit(f'settings this source tree does not know: {sorted(unknown)}')
dev = torch.device(job['device'])
try: model = build_model(job['arch'], pretrained=False).eval().to(dev)
except TypeError: model = build_model(job['arch']).eval().to(dev)
x = tiny_images(job['batch'], size=job['size']).to(dev)
sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
qm = quantize_model(model, x[:2], QuantConfig(job['wbits'], job['abits'], **qkw))
set_mode(qm, 'hard')
with calibrating(qm): qm(x)
cl = 'channels_last' in inspect.signature(cache_unit).parameters and rkw.get('channels_last', False)
units = {}
for name in job['units']:
    d = cache_unit(model, qm, name, x, store=dev, **({'channels_last': True} if cl else {}))
    u = qm.unit(name); set_mode(u, 'soft')
    with calibrating(u): u(d.x_q)
    units[name] = (u, d, {n: p.detach().clone() for n, p in u.state_dict().items()})
cfg = ReconConfig(iters=job['steps'], log_every=job['steps'], batch_size=job['batch'], **rkw)
def steps(name):
    u, d, state = units[name]; u.load_state_dict(state)  # every round from the same start
    sync(); t0 = time.perf_counter(); reconstruct(u, d, cfg, name=name, generator=torch.Generator().manual_seed(0), show_progress=False); sync()
    return (time.perf_counter() - t0) / job['steps']
for name in units: steps(name)  # warm-up (and compile)
print(json.dumps({'ready': True, 'versions': versions()}), flush=True)
for line in sys.stdin:  # one unit name per round
    print(json.dumps({'unit': line.strip(), 's_per_step': steps(line.strip())}), flush=True)
'''

class Variant:
    "One source tree and its settings, timing units in a worker process of its own."
    def __init__(self, spec:str, job:dict):
        name, _, rest = spec.partition('=')
        src, _, sets = rest.partition(':')
        self.name, self.src = name, str(Path(src).resolve())
        self.settings = {k: json.loads(v) for k, v in (kv.split('=') for kv in sets.split(',') if kv)}
        env = {**os.environ, 'PYTHONPATH': self.src, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
        self.p = subprocess.Popen([sys.executable, '-c', WORKER, json.dumps({**job, 'settings': self.settings})], cwd=self.src, env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = json.loads(self.p.stdout.readline() or '{}')
        if not first.get('ready'): raise SystemExit(f'variant {name}: the worker failed (see its stderr above)')
        self.versions = first['versions']
    def time(self, unit:str) -> float:
        self.p.stdin.write(unit + '\n'); self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())['s_per_step']
    def close(self): self.p.stdin.close(); self.p.wait()

def bench_recon(a) -> dict:
    job = dict(arch=a.arch, size=a.size, batch=a.batch, wbits=a.wbits, abits=a.abits, units=a.units, steps=a.steps, device=a.device)
    variants = [Variant(v, job) for v in a.variant]
    rows = []
    for unit in a.units:
        t = {v.name: [] for v in variants}; loads = []
        for r in range(a.rounds):
            for v in (variants if r % 2 == 0 else variants[::-1]): t[v.name].append(v.time(unit))
            loads.append(load())
        base = variants[0].name
        ratios = {k: [b / x for b, x in zip(t[base], v)] for k, v in t.items() if k != base}
        row = {'unit': unit, **{f'{k}_s_per_step': med(v) for k, v in t.items()},
               **{f'speedup_{k}_over_{base}': med(r) for k, r in ratios.items()},
               **{f'speedup_{k}_over_{base}_range': [min(r), max(r)] for k, r in ratios.items()},
               **{f'{k}_s_per_step_rounds': v for k, v in t.items()},
               'rounds': a.rounds, 'steps_per_round': a.steps, 'load_per_round': loads}
        rows.append(row); print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != 'load_per_round' and not k.endswith('_rounds')}), flush=True)
    for v in variants: v.close()
    return {'stage': 'recon', **job, 'rounds': a.rounds, 'variants': {v.name: {'src': os.path.relpath(v.src), 'settings': v.settings, 'versions': v.versions} for v in variants}, 'units': rows}

# ---------------------------------------------------------------- meta: ours vs naive

def bench_meta(a) -> dict:
    from metaaug.fixtures import tiny_images
    from metaaug.models import build_model, fold_bn
    from metaaug.wrap import QuantConfig, quantize_model, set_mode, calibrating
    from metaaug.capture import cache_unit, tail_after
    from metaaug.meta import META_PRESETS, MetaBudget, MetaContext, caching_bound, fp_outputs, meta_phase, meta_step, naive_meta_step, step_macs, theta_groups
    from metaaug.transform import UNet, TransformConfig
    torch.manual_seed(0)
    model = build_model(a.arch, pretrained=False).eval()
    x = tiny_images(a.n_calib, size=a.size)
    qm = quantize_model(model, x[:2], QuantConfig(a.wbits, a.abits)); set_mode(qm, 'hard')
    with calibrating(qm): qm(x[:32])
    fps = {'ours': fold_bn(model, within=qm.units), 'naive': copy.deepcopy(model).eval().requires_grad_(False)}
    outs = {k: fp_outputs(fp, x) for k, fp in fps.items()}
    budget = MetaBudget(iters=a.steps, batch_size=a.meta_batch, val_batch=a.val_batch, diag_every=0)
    rows = []
    for unit in a.units:
        set_mode(qm.unit(unit), 'soft'); d = cache_unit(model, qm, unit, x)
        ctx = {k: MetaContext(fps[k], qm, unit, x, d.x_q, outs[k][0], tail_after(fps[k], unit), outs[k][1]) for k in fps}
        for flavour in a.flavours:
            cfg, T0 = META_PRESETS[flavour], UNet(TransformConfig(*a.transform))
            o, n = step_macs(meta_step, ctx['ours'], T0, cfg, budget), step_macs(naive_meta_step, ctx['naive'], T0, cfg, budget)
            Ts = {'ours': copy.deepcopy(T0).to(memory_format=torch.channels_last), 'naive': copy.deepcopy(T0)}
            fns, t, loads = {'ours': meta_step, 'naive': naive_meta_step}, {'ours': [], 'naive': []}, []
            state = copy.deepcopy(qm.unit(unit).state_dict())
            def phase(k, iters):
                qm.unit(unit).load_state_dict(state)
                meta_phase(ctx[k], Ts[k], cfg, budget.replace(iters=iters, channels_last=k == 'ours'), torch.Generator().manual_seed(0), show_progress=False, step_fn=fns[k])
            phase('ours', 1); phase('naive', 1)
            for r in range(a.rounds):
                for k in (('ours', 'naive') if r % 2 == 0 else ('naive', 'ours')):
                    t0 = time.perf_counter(); phase(k, a.steps); t[k].append((time.perf_counter() - t0) / a.steps)
                loads.append(load())
            row = {'unit': unit, 'flavour': flavour, 'ours_s_per_iter': med(t['ours']), 'naive_s_per_iter': med(t['naive']),
                   'speedup': med([b / x for b, x in zip(t['naive'], t['ours'])]), 'caching_bound': caching_bound(o, n),
                   'forward_macs_ours': o['all'], 'forward_macs_naive': n['all'], 'load_per_round': loads}
            rows.append(row); print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != 'load_per_round'}), flush=True)
        set_mode(qm.unit(unit), 'hard')
    return {'stage': 'meta', 'arch': a.arch, 'size': a.size, 'n_calib': a.n_calib, 'budget': budget.to_dict(), 'transform': a.transform, 'units': rows}

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('stage', choices=['recon', 'meta'])
    p.add_argument('--arch', default='resnet20'); p.add_argument('--size', type=int, default=32)
    p.add_argument('--units', nargs='+', required=True); p.add_argument('--wbits', type=int, default=4); p.add_argument('--abits', type=int, default=4)
    p.add_argument('--batch', type=int, default=32, help='recon: samples per step (and cached images)')
    p.add_argument('--steps', type=int, default=10, help='steps (meta: iterations) per round'); p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--variant', action='append', default=[], metavar='NAME=SRC[:k=v,...]', help='recon: a source tree and its settings; the first is the baseline')
    p.add_argument('--flavours', nargs='+', default=['official', 'tuned']); p.add_argument('--n_calib', type=int, default=64)
    p.add_argument('--meta_batch', type=int, default=16); p.add_argument('--val_batch', type=int, default=32)
    p.add_argument('--transform', type=int, nargs=2, default=[16, 2], metavar=('WIDTH', 'DEPTH'))
    p.add_argument('--device', default='cpu', help='recon: where the steps run (cpu, cuda)')
    p.add_argument('--out', required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE.parent))
    from metaaug.core import atomic_write_bytes, to_jsonable
    from metaaug.runs import versions
    t0, start = time.perf_counter(), load()
    if a.stage == 'recon' and len(a.variant) < 1: p.error('recon: give at least one --variant NAME=SRC[:settings]')
    res = bench_recon(a) if a.stage == 'recon' else bench_meta(a)
    res = {'command': ' '.join(['python'] + sys.argv), 'versions': versions(), 'start': start, **res, 'wall_s': time.perf_counter() - t0, 'end': load()}
    atomic_write_bytes(a.out, json.dumps(to_jsonable(res), indent=1).encode())
