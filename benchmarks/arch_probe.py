#!/usr/bin/env python
"""Generality check: `quantize` (Genie-M and MetaAug) on many torchvision CNNs and two hand-written ones.

Random weights (BatchNorm statistics taken from the images), synthetic images, a few iterations: this checks that
every architecture runs end to end (units found, data captured, reconstruction and the meta phase run, the
quantized model gives finite logits), not its accuracy.
Each (architecture, method) runs in its own subprocess, so a crash or a memory blow-up is recorded, not fatal.
Results: one JSON file, rewritten after every run (status, units, seconds, peak RSS, error).

    OMP_NUM_THREADS=1 python benchmarks/arch_probe.py --out benchmarks/results/arch_probe.json
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ARCHS = ['plain_gray', 'conv_head', 'resnet18', 'mobilenet_v2', 'mobilenet_v3_small', 'shufflenet_v2_x0_5', 'squeezenet1_0',
         'efficientnet_b0', 'regnet_x_400mf', 'regnet_y_400mf', 'mnasnet0_5', 'googlenet', 'densenet121', 'convnext_tiny',
         'resnext50_32x4d', 'inception_v3']
SIZES = {'inception_v3': 80} # smallest input each architecture accepts, where 32 is too small

def child(arch:str, method:str, size:int) -> dict:
    "One run in this process: build, quantize with a tiny budget, compare the quantized logits with the FP ones."
    import warnings, torch, torchvision
    from torch import nn
    from metaaug.core import peak_rss_mb
    from metaaug.pipeline import preset, quantize
    warnings.filterwarnings('ignore'); torch.set_num_threads(1); torch.manual_seed(0)
    cin = 3
    if arch == 'plain_gray':  # a user's own network: grayscale input, no BatchNorm, functional ReLU
        cin = 1
        class Plain(nn.Module):
            def __init__(s):
                super().__init__(); s.c1, s.c2, s.fc = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.Linear(16, 10)
            def forward(s, x): return s.fc(torch.relu(s.c2(torch.relu(s.c1(x)))).mean((2, 3)))
        model = Plain()
    elif arch == 'conv_head':  # a convolutional classifier head, no Linear
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    else:
        kw = dict(aux_logits=False, init_weights=True) if arch in ('googlenet', 'inception_v3') else {}
        model = torchvision.models.get_model(arch, weights=None, num_classes=10, **kw)
    x = torch.randn(8, cin, size, size)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns: bn.reset_running_stats(); bn.momentum = None  # cumulative average: BatchNorm statistics of these images,
    with torch.no_grad(): model.train()(x)                        # so that a random network's activations are well scaled
    model.eval()
    cfg = preset('smoke', method=method, iters=4, batch_size=4)
    if method == 'metaaug': cfg = cfg.replace(meta=cfg.meta.replace(iters=2, batch_size=4, val_batch=4, warmup_steps=5))
    t = time.perf_counter()
    qm, hist = quantize(model, x, cfg, show_progress=False)
    with torch.no_grad(): q = qm(x)
    return {'units': len(qm.units), 'meta_units': sum('meta_iters' in u for u in hist['units']), 'seconds': round(time.perf_counter() - t, 1),
            'finite': bool(torch.isfinite(q).all()),  # not the logits' error: random BatchNorm networks are chaotic, so even W8A8 moves them by 40-90 %
            'peak_rss_mb': round(peak_rss_mb())}

def run_one(arch:str, method:str, a) -> dict:
    size = SIZES.get(arch, a.size)
    cmd = [sys.executable, __file__, '--child', arch, method, str(size)]
    env = {**os.environ, 'METAAUG_CACHE': a.cache, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
    t = time.perf_counter()
    try: p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=env)
    except subprocess.TimeoutExpired: return {'arch': arch, 'method': method, 'size': size, 'status': 'timeout', 'seconds': a.timeout}
    row = {'arch': arch, 'method': method, 'size': size}
    if p.returncode == 0: return row | {'status': 'ok'} | json.loads(p.stdout.strip().splitlines()[-1])
    err = [l for l in p.stderr.strip().splitlines() if l.strip()]
    return row | {'status': 'error', 'seconds': round(time.perf_counter() - t, 1), 'error': err[-1][:400] if err else f'exit {p.returncode}'}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--archs', nargs='+', default=ARCHS)
    ap.add_argument('--methods', nargs='+', default=['geniem', 'metaaug'], choices=['geniem', 'metaaug'])
    ap.add_argument('--size', type=int, default=32, help='image side (architectures in SIZES use their own)')
    ap.add_argument('--timeout', type=int, default=600, help='seconds per run')
    ap.add_argument('--out', default='benchmarks/results/arch_probe.json')
    ap.add_argument('--child', nargs=3, metavar=('ARCH', 'METHOD', 'SIZE'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], int(a.child[2])))); return
    from metaaug.pipeline import versions
    res = {'command': 'python benchmarks/arch_probe.py ' + ' '.join(sys.argv[1:]), 'versions': versions(), 'runs': []}
    with tempfile.TemporaryDirectory() as cache:
        a.cache = cache
        for arch in a.archs:
            for m in a.methods:
                res['runs'].append(run_one(arch, m, a))
                r = res['runs'][-1]
                print(f"{r['status']:8s} {arch:20s} {m:8s} {r.get('seconds', '')!s:>7}s {r.get('error', '')}", flush=True)
                Path(a.out).parent.mkdir(parents=True, exist_ok=True)
                Path(a.out).write_text(json.dumps(res, indent=1) + '\n')
    bad = [r for r in res['runs'] if r['status'] != 'ok' or not r.get('finite', True)]
    print(f"{len(res['runs']) - len(bad)} ok, {len(bad)} not ok")
    sys.exit(1 if bad else 0)

if __name__ == '__main__': main()
