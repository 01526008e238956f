#!/usr/bin/env python
"""Foundation benchmark: round-to-nearest and Genie-M on a CIFAR ResNet at several bit settings.

Each run appends one JSON record (metaaug.pipeline.run_ptq) to --out; runs already in the file are skipped, so
an interrupted benchmark resumes. `--table` renders the file as a markdown table.

    python benchmarks/ptq_cifar.py --preset paper --iters 2000 --round_lr 1e-3 --out benchmarks/results/ptq_resnet20.jsonl
    python benchmarks/ptq_cifar.py --table benchmarks/results/ptq_resnet20.jsonl
"""
import argparse, itertools, json, statistics
from pathlib import Path
from metaaug.core import read_jsonl
from metaaug.pipeline import preset, run_ptq

KEY = ('arch', 'method', 'wbits', 'abits', 'n_calib', 'iters', 'seed')

def key(r): return tuple(r[k] for k in KEY) + (r['config']['recon']['round_lr'], r['config']['recon']['batch_size'])

def run(a):
    out = Path(a.out)
    done = {key(r) for r in read_jsonl(out) if r.get('status') == 'ok'} if out.exists() else set()
    for method, bits, seed in itertools.product(a.methods, a.bits, a.seeds):
        w, ab = map(int, bits.split('/'))
        cfg = preset(a.preset, method=method, wbits=w, abits=ab, iters=a.iters, round_lr=a.round_lr, seed=seed, batch_size=a.batch_size)
        k = (a.arch, method, w, ab, a.n_calib, 0 if method == 'rtn' else cfg.recon.iters, seed, cfg.recon.round_lr, cfg.recon.batch_size)
        if k in done: continue
        r = run_ptq(a.arch, cfg, n_calib=a.n_calib, n_test=a.n_test, device=a.device, out=out, show_progress=not a.quiet)
        print(json.dumps({k: r[k] for k in ('method', 'wbits', 'abits', 'seed', 'fp_top1', 'test_top1', 'calib_top1', 'wall_s', 'peak_rss_mb')}), flush=True)

def table(path):
    rows = {}
    for r in read_jsonl(path):
        if r.get('status') != 'ok': continue
        rows.setdefault(key(r), []).append(r)
    print('| arch | method | W/A | N | iters/unit | V lr | seeds | test top-1 | calib top-1 | FP test / calib | soft V at end | wall (s) | peak RSS (MB) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for k, rs in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] != 'rtn', -kv[0][2], -kv[0][3], kv[0][7])):
        def ms(f):
            v = [f(r) for r in rs]
            return f'{statistics.mean(v):.2f}' + (f' ± {statistics.stdev(v):.2f}' if len(v) > 1 else '')
        soft = [u.get('soft_fraction') for r in rs for u in r['units'] if u.get('soft_fraction') is not None]
        print(f"| {k[0]} | {k[1]} | {k[2]}/{k[3]} | {k[4]} | {k[5]} | {k[7] if k[1] != 'rtn' else '—'} | {len(rs)} | {ms(lambda r: r['test_top1'])} | "
              f"{ms(lambda r: r['calib_top1'])} | {rs[0]['fp_top1']:.2f} / {rs[0]['fp_calib_top1']:.2f} | "
              f"{(f'{100*statistics.mean(soft):.1f} % (max {100*max(soft):.1f} %)') if soft else '—'} | {ms(lambda r: r['wall_s'])} | {ms(lambda r: r['peak_rss_mb'])} |")

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='resnet20'); p.add_argument('--preset', default='paper')
    p.add_argument('--methods', nargs='+', default=['rtn', 'geniem']); p.add_argument('--bits', nargs='+', default=['4/4', '2/4', '2/2'])
    p.add_argument('--seeds', nargs='+', type=int, default=[0]); p.add_argument('--iters', type=int, default=2000)
    p.add_argument('--round_lr', type=float, default=None); p.add_argument('--batch_size', type=int, default=None)
    p.add_argument('--n_calib', type=int, default=1024); p.add_argument('--n_test', type=int, default=None)
    p.add_argument('--device', default='auto'); p.add_argument('--out', default='benchmarks/results/ptq_resnet20.jsonl')
    p.add_argument('--quiet', action='store_true'); p.add_argument('--table', metavar='JSONL')
    a = p.parse_args()
    table(a.table) if a.table else run(a)
