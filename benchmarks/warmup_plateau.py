#!/usr/bin/env python
"""Replay the warm-up's plateau rule (`patience`, 5 % `min_improvement`) on the checks recorded in cached warm-ups.

Every warm-up in the cache ($METAAUG_CACHE/warmup) that ran to `max_steps` without reaching its threshold is
replayed: at which step the plateau rule would have stopped it, the mean (T(x) - x)^2 at that check and at the
last step. No training runs: the checks (every 10 steps) are in each cached history.

    python benchmarks/warmup_plateau.py --patience 500 --out benchmarks/results/warmup_plateau.json
"""
import argparse, json
import torch
from metaaug.core import atomic_write_bytes
from metaaug.data import cache_dir
from metaaug.transform import plateaued

def replay(mse, steps, patience, min_improvement):
    "The index of the check at which the plateau rule stops a warm-up with these checks (None: it would not stop)."
    return next((i for i in range(len(mse)) if plateaued(steps[:i + 1], mse[:i + 1], patience, min_improvement)), None)

def main(a):
    rows = []
    for f in sorted(cache_dir('warmup').glob('unet-*.pt')):
        h = torch.load(f, map_location='cpu', weights_only=True)['history']
        if h.get('converged') or h.get('stopped', 'max_steps') != 'max_steps' or not h.get('mse'): continue  # ran to max_steps only
        i = replay(h['mse'], h['eval_step'], a.patience, a.min_improvement)
        rows.append({'file': f.name, 'max_steps': h['steps'], 'last_mse': h['mse'][-1],
                     'stop_step': None if i is None else h['eval_step'][i], 'mse_at_stop': None if i is None else h['mse'][i]})
        print(json.dumps(rows[-1]))
    res = {'patience': a.patience, 'min_improvement': a.min_improvement, 'runs': rows,
           'steps_saved_fraction': [1 - r['stop_step'] / r['max_steps'] for r in rows if r['stop_step'] is not None]}
    atomic_write_bytes(a.out, json.dumps(res, indent=1).encode())

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--patience', type=int, default=500); p.add_argument('--min_improvement', type=float, default=0.05)
    p.add_argument('--out', default='benchmarks/results/warmup_plateau.json')
    main(p.parse_args())
