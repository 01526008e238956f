#!/usr/bin/env python
"""PTQ benchmark on a CIFAR ResNet: round-to-nearest, Genie-M and MetaAug over bits, calibration sizes and seeds.

Each run appends one JSON record (metaaug.pipeline.run_ptq) to --out; runs already in the file are skipped, so an
interrupted benchmark resumes. `--table FILE` renders a file as a markdown table (mean ± std over seeds);
`--paired FILE ...` compares every MetaAug flavour with Genie-M seed by seed (metaaug.experiments.paired).

    # foundation benchmark (issue 2): the exact settings of the reference, then the cpu preset
    python benchmarks/ptq_cifar.py --preset paper --iters 2000 --compile --out benchmarks/results/ptq_resnet20.jsonl
    python benchmarks/ptq_cifar.py --preset cpu --methods geniem --out benchmarks/results/ptq_resnet20.jsonl
    # MetaAug vs Genie-M at small N (issue 3)
    python benchmarks/ptq_cifar.py --preset paper --iters 2000 --compile --methods geniem metaaug --bits 2/2 \\
        --n_calib 64 256 1024 --seeds 0 1 2 --out benchmarks/results/metaaug_resnet20.jsonl
    python benchmarks/ptq_cifar.py --table benchmarks/results/ptq_resnet20.jsonl
    python benchmarks/ptq_cifar.py --paired benchmarks/results/metaaug_grid.jsonl benchmarks/results/metaaug_explore.jsonl
"""
import argparse, hashlib, itertools, json, statistics
from typing import NamedTuple
from pathlib import Path
from metaaug.core import read_jsonl
from metaaug.experiments import paired
from metaaug.augment import parse_augment
from metaaug.meta import META_PRESETS, MetaConfig
from metaaug.pipeline import preset, run_ptq

BUDGET_ONLY = ('diag_every', 'warmup_steps', 'warmup_threshold', 'warmup_patience')  # how T's warm-up ran and how often diagnostics were taken: not the flavour

def flat(meta:dict) -> dict:
    "A MetaConfig dict with its sub-configs flattened to 'losses.kl_weight' keys, budget-only fields dropped."
    out = {}
    for k, v in meta.items():
        if k not in BUDGET_ONLY: out.update({f'{k}.{k2}': v2 for k2, v2 in v.items()} if isinstance(v, dict) else {k: v})
    return out

META_DEFAULTS = flat(MetaConfig().to_dict())  # what a flavour is compared with

def flavour(meta:dict) -> dict:
    "A MetaAug configuration as the fields that differ from the official defaults (fields added later compare equal at their default)."
    return {k: v for k, v in flat(meta).items() if META_DEFAULTS.get(k) != v}

class RunKey(NamedTuple):
    "What decides a run's result here (runs with equal keys are the same run; a field added later must be None at its old value)."
    arch:str; method:str; wbits:int; abits:int; n_calib:int; iters:int; round_lr:float; batch_size:int
    flavour:str|None; augment:str|None; dtype:str|None; seed:int

class Setting(NamedTuple):
    "What two arms of a seed-paired comparison share."
    arch:str; wbits:int; abits:int; n_calib:int; iters:int; round_lr:float; batch_size:int; cpu:str|None

def key(r) -> RunKey:
    c = r['config']
    fl = json.dumps(flavour(c['meta']), sort_keys=True) if r['method'] == 'metaaug' else None
    aug = c.get('augment', {})  # records before augmentation existed have none
    aug = json.dumps(aug, sort_keys=True) if aug.get('name', 'none') != 'none' else None
    low = c['recon'].get('compute_dtype', 'float32')  # records before the field: float32
    return RunKey(r['arch'], r['method'], r['wbits'], r['abits'], r['n_calib'], r['iters'], c['recon']['round_lr'],
                  c['recon']['batch_size'], fl, aug, None if low == 'float32' else low, r['seed'])

def dtype_label(dtype) -> str: return f', {dtype} reconstruction' if dtype else ''

def augment_label(aug_json, method) -> str:
    "' + randaugment:photometric' (for Genie-M also ', batch ×2' when its batch grows with the copies), or '' without augmentation."
    if aug_json is None: return ''
    a = json.loads(aug_json)
    return f" + {a['name']}{':' + a['ops'] if a['ops'] != 'all' else ''}" + (f", batch ×{1 + a['copies']}" if a['scale_batch'] and method == 'geniem' else '')

def run(a):
    out = Path(a.out)
    done = {key(r) for r in read_jsonl(out) if r.get('status') == 'ok'} if out.exists() else set()
    for method, bits, n, seed in itertools.product(a.methods, a.bits, a.n_calib, a.seeds):
        w, ab = map(int, bits.split('/'))
        cfg = preset(a.preset, meta=a.meta if method == 'metaaug' else None, method=method, wbits=w, abits=ab,
                     iters=a.iters, round_lr=a.round_lr, seed=seed, batch_size=a.batch_size, compile=a.compile, compute_dtype=a.recon_dtype,
                     augment=parse_augment(a.augment, scale_batch=a.augment_batch == 'scaled') if a.augment else None)
        if a.meta_iters is not None: cfg = cfg.replace(meta=cfg.meta.replace(iters=a.meta_iters))
        if a.meta_set: cfg = cfg.replace(meta=cfg.meta.replace(**meta_overrides(a.meta_set, cfg.meta)))
        probe = {'arch': a.arch, 'method': method, 'wbits': w, 'abits': ab, 'n_calib': n, 'seed': seed,
                 'iters': 0 if method == 'rtn' else cfg.recon.iters, 'config': cfg.to_dict()}
        if key(probe) in done: continue
        ckpt = checkpoint_path(a.checkpoint_dir, probe) if a.checkpoint_dir else None
        r = run_ptq(a.arch, cfg, n_calib=n, n_test=a.n_test, device=a.device, out=out, show_progress=not a.quiet,
                    checkpoint=ckpt, checkpoint_every=a.checkpoint_every, resume=bool(ckpt and ckpt.exists()))
        print(json.dumps({k: r.get(k) for k in ('method', 'wbits', 'abits', 'n_calib', 'seed', 'fp_top1', 'test_top1', 'calib_top1', 'wall_s', 'meta_s', 'peak_rss_mb')}), flush=True)

def checkpoint_path(folder, probe) -> Path:
    "One checkpoint file per run in `folder`, named by its settings and a hash of its config (an existing one is resumed)."
    h = hashlib.sha1(json.dumps(probe['config'], sort_keys=True).encode()).hexdigest()[:10]
    name = f"{probe['arch']}_{probe['method']}_w{probe['wbits']}a{probe['abits']}_n{probe['n_calib']}_s{probe['seed']}_{h}.ckpt"
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)/name

def meta_overrides(pairs, base):
    "['t_lr=1e-4', 'transform.residual=true'] → `base.replace` arguments (values parsed as JSON; a nested field changes `base`'s own sub-config)."
    out = {}
    for kv in pairs:
        k, v = kv.split('=', 1)
        v = json.loads(v) if v[:1] in '0123456789-[{tfn"' else v
        if '.' in k:
            outer, inner = k.split('.', 1)
            out[outer] = out.get(outer, getattr(base, outer)).replace(**{inner: v})
        else: out[k] = v
    return out

def _label(flavour_json):
    "Short name of a MetaAug configuration: flavour fields that differ from the official preset."
    return ', '.join(f'{k.split(".")[-1]}={v}' for k, v in json.loads(flavour_json).items()) or 'official'

def _ms(v): return f'{statistics.mean(v):.2f}' + (f' ± {statistics.stdev(v):.2f}' if len(v) > 1 else '')

def table(path):
    groups = {}
    for r in read_jsonl(path):
        if r.get('status') == 'ok': groups.setdefault(key(r)._replace(seed=None), []).append(r)
    print('| arch | method | W/A | N | iters/unit | V lr | seeds | test top-1 | calib top-1 | FP test / calib | soft V at end (mean, max) | wall (s) | meta (s) | peak RSS (MB) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    order = {'rtn': 0, 'geniem': 1, 'metaaug': 2}
    for k, rs in sorted(groups.items(), key=lambda kv: (kv[0].arch, kv[0].n_calib, -kv[0].wbits, -kv[0].abits, order[kv[0].method], kv[0].round_lr)):
        soft = [u['soft_fraction'] for r in rs for u in r['units'] if u.get('soft_fraction') is not None]
        name = k.method + (f' ({_label(k.flavour)})' if k.flavour else '') + augment_label(k.augment, k.method) + dtype_label(k.dtype)
        print(f"| {k.arch} | {name} | {k.wbits}/{k.abits} | {k.n_calib} | {k.iters} | {k.round_lr if k.method != 'rtn' else '—'} | {len(rs)} | "
              f"{_ms([r['test_top1'] for r in rs])} | {_ms([r['calib_top1'] for r in rs])} | "
              f"{rs[0]['fp_top1']:.2f} / {rs[0]['fp_calib_top1']:.2f} | "
              f"{(f'{100*statistics.mean(soft):.1f} %, {100*max(soft):.1f} %') if soft else '—'} | "
              f"{_ms([r['wall_s'] for r in rs])} | {_ms([r.get('meta_s', 0) for r in rs])} | {_ms([r['peak_rss_mb'] for r in rs])} |")

def named_flavour(flavour_json) -> str:
    "A MetaAug configuration as the nearest named flavour at the `cpu` budget plus the fields that differ from it ('tuned, t_lr=0')."
    full = META_DEFAULTS | json.loads(flavour_json)
    def diff(name):
        ref = flat(preset('cpu', meta=name).meta.to_dict())
        return {k: v for k, v in full.items() if ref.get(k) != v}
    name = min(reversed(list(META_PRESETS)), key=lambda n: len(diff(n)))  # a tie goes to the later, derived flavour (tuned over paper)
    return ', '.join([name] + [f'{k.split(".")[-1]}={v}' for k, v in sorted(diff(name).items())])

def paired_table(paths):
    """Every MetaAug flavour and every '+ X' against plain Genie-M on the same setting, machine and seeds (a later record
    of the same run replaces an earlier one); a flavour that doubles the final batch also against Genie-M at twice the batch, where run."""
    runs = {}
    for p in paths:
        for r in read_jsonl(p):
            if r.get('status') == 'ok': runs[key(r), r.get('versions', {}).get('cpu')] = r  # records before the cpu field: None
    arms = {}
    for (k, cpu), r in runs.items():
        s = Setting(**{f: getattr(k, f) for f in Setting._fields if f != 'cpu'}, cpu=cpu)
        arms.setdefault(s, {}).setdefault((k.method, k.flavour, k.augment, k.dtype), {})[k.seed] = r['test_top1']
    print('| arch | W/A | N | iters/unit | machine | method | seeds | − Genie-M: mean ± sd | 95 % CI | seeds above | sign-flip p |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for s, by_arm in sorted(arms.items(), key=lambda kv: tuple(map(str, kv[0]))):
        base = by_arm.get(('geniem', None, None, None))
        for (method, fl, aug, low), vals in sorted(by_arm.items(), key=str):
            if (method, fl, aug, low) == ('geniem', None, None, None) or method == 'rtn' or not base or not set(vals) & set(base): continue
            label = f"{('MetaAug ' + named_flavour(fl)) if fl else 'Genie-M'}{augment_label(aug, method)}{dtype_label(low)}"
            _paired_row(s, label, base, vals)
            matched = arms.get(s._replace(batch_size=2 * s.batch_size), {}).get(('geniem', None, None, None))
            if fl and doubles_batch(fl) and matched and set(vals) & set(matched):  # the control with as many samples per step
                _paired_row(s, f'{label}, against Genie-M at batch {2 * s.batch_size}', matched, vals)

def doubles_batch(flavour_json) -> bool:
    "Whether a MetaAug flavour's final reconstruction takes 2× the samples per step (`final_batch='double'`, the official code)."
    return json.loads(flavour_json).get('final_batch', META_DEFAULTS['final_batch']) == 'double'

def _paired_row(s, label, base, vals):
    "One row of the paired table: `vals` − `base` over their shared seeds."
    pr = paired(base, vals)
    ci = '—' if pr.ci95 is None else f'[{pr.ci95[0]:+.2f}, {pr.ci95[1]:+.2f}]'
    print(f"| {s.arch} | {s.wbits}/{s.abits} | {s.n_calib} | {s.iters} | {s.cpu or 'not recorded'} | {label} | {len(pr.seeds)} | "
          f"{pr.mean:+.2f}{f' ± {pr.sd:.2f}' if pr.sd is not None else ''} | {ci} | {pr.wins} of {len(pr.seeds)} | {pr.p:.3g} |")

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='resnet20'); p.add_argument('--preset', default='paper')
    p.add_argument('--methods', nargs='+', default=['rtn', 'geniem']); p.add_argument('--bits', nargs='+', default=['4/4', '2/4', '2/2'])
    p.add_argument('--n_calib', nargs='+', type=int, default=[1024]); p.add_argument('--seeds', nargs='+', type=int, default=[0])
    p.add_argument('--iters', type=int, default=2000); p.add_argument('--round_lr', type=float, default=None)
    p.add_argument('--batch_size', type=int, default=None); p.add_argument('--n_test', type=int, default=None)
    p.add_argument('--meta', default=None, help='MetaAug flavour: ' + ', '.join(META_PRESETS) + ' (default: official)'); p.add_argument('--meta_iters', type=int, default=None)
    p.add_argument('--meta_set', nargs='*', default=[], metavar='FIELD=VALUE', help='MetaConfig overrides, e.g. t_lr=1e-4 transform.residual=true')
    p.add_argument('--augment', default=None, metavar='X', help="Genie-M + X / MetaAug + X, e.g. randaugment:photometric (metaaug.augment.parse_augment)")
    p.add_argument('--augment_batch', choices=['scaled', 'same'], default='scaled', help="Genie-M + X: batch × (1 + copies) as MetaAug's official doubling, or the same batch drawn from originals ∪ copies")
    p.add_argument('--recon_dtype', choices=['float32', 'bfloat16'], default=None, help="reconstruction steps' compute dtype (ReconConfig.compute_dtype); default: the preset's, float32")
    p.add_argument('--compile', action=argparse.BooleanOptionalAction, default=None, help="fused activation quantizers (torch.compile); default: the preset's")
    p.add_argument('--checkpoint_dir', default=None, help='one checkpoint per run here; a run whose checkpoint exists resumes from it')
    p.add_argument('--checkpoint_every', type=int, default=2000, help='steps between checkpoints inside a unit (0: only between units)')
    p.add_argument('--device', default='auto'); p.add_argument('--out', default='benchmarks/results/ptq_resnet20.jsonl')
    p.add_argument('--quiet', action='store_true'); p.add_argument('--table', metavar='JSONL')
    p.add_argument('--paired', nargs='+', metavar='JSONL', help='seed-paired MetaAug − Genie-M table over these results files')
    a = p.parse_args()
    if a.paired: paired_table(a.paired)
    elif a.table: table(a.table)
    else: run(a)
