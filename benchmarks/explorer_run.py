#!/usr/bin/env python
"""A short real MetaAug run on CIFAR-10 ResNet-20 whose T snapshots (after the warm-up and after each unit's meta phase)
feed the Fig. A.1 explorer (nbs/17_widgets.ipynb). Writes, under --dir:
  <name>.pt            the quantized model (metaaug_eval --load), with T beside it as <name>.T.pt
  <name>.snapshots.pt  T(x) after the warm-up and each unit, on the first calibration images (metaaug.views.load_snapshots)
  <name>.jsonl         the run record (metaaug.pipeline.run_ptq)

    OMP_NUM_THREADS=1 python benchmarks/explorer_run.py   # 7.6 min on one (busy) CPU thread
"""
import argparse, json
from pathlib import Path
from metaaug.data import calibration_set, load_split, resolve_data_root
from metaaug.pipeline import preset, run_ptq
from metaaug.views import TSnapshots, save_snapshots

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dir', default='benchmarks/results/explorer'); p.add_argument('--name', default='resnet20_w2a2')
    p.add_argument('--bits', default='2/2'); p.add_argument('--n_calib', type=int, default=64)
    p.add_argument('--iters', type=int, default=200); p.add_argument('--meta_iters', type=int, default=30)
    p.add_argument('--n_test', type=int, default=1000); p.add_argument('--seed', type=int, default=0)
    p.add_argument('--n_keep', type=int, default=24, help='calibration images (and their T(x)) stored with the snapshots')
    a = p.parse_args()
    w, ab = map(int, a.bits.split('/'))
    cfg = preset('cpu', method='metaaug', wbits=w, abits=ab, iters=a.iters, seed=a.seed, compile=False)
    cfg = cfg.replace(meta=cfg.meta.replace(iters=a.meta_iters))
    out = Path(a.dir); snaps = TSnapshots()
    r = run_ptq('resnet20', cfg, n_calib=a.n_calib, n_test=a.n_test, out=out/f'{a.name}.jsonl', save=out/f'{a.name}.pt', callbacks=[snaps])
    calib, _ = calibration_set(load_split('cifar10', 'train', resolve_data_root()), a.n_calib, seed=a.seed)
    keep = ('arch', 'method', 'wbits', 'abits', 'n_calib', 'n_test', 'iters', 'seed', 'fp_top1', 'test_top1', 'calib_top1', 'wall_s', 'meta_s')
    save_snapshots(snaps, out/f'{a.name}.snapshots.pt', calib[:cfg.capture_batch], n_keep=a.n_keep, batch_size=cfg.capture_batch,
                   meta={**{k: r[k] for k in keep}, 'meta_iters': a.meta_iters, 'epsilon': cfg.meta.losses.margin})
    print(json.dumps({k: r[k] for k in keep}))
