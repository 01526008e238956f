#!/usr/bin/env python
"""CPU vs CUDA agreement (issue 7): the same short PTQ runs on both devices, compared figure by figure.

What must agree to float tolerance (same inputs, no random draws involved):
- the FP model's logits on the calibration images;
- the first unit's round-to-nearest reconstruction error (computed before any training step). Later units' inputs
  come from earlier units trained with each device's own random draws, so their errors are only reported.

What can only agree statistically (QDrop and mini-batches draw from each device's own generator): the per-unit
errors and the test top-1 after reconstruction. They are reported side by side with their differences.

TF32 is off by default (`--tf32` allows it, PyTorch's CUDA default for convolutions): with it, logits differ from
the CPU's by about 1e-3 relative.

    python benchmarks/device_agree.py --out benchmarks/results/device_agree.json   # needs a CUDA device
"""
import argparse, json, sys
from pathlib import Path
import torch
from metaaug.core import atomic_write_bytes
from metaaug.data import resolve_data_root
from metaaug.models import ARCHS, build_model
from metaaug.pipeline import load_run_data, preset, run_ptq, versions

def fp_logits(arch, data, n_calib, seed, dev):
    "FP logits of the calibration images on `dev`, returned on the CPU."
    root = resolve_data_root(data)
    model = build_model(arch, None, data_root=root).to(dev).eval()
    (cx, _), _ = load_run_data(ARCHS[arch].dataset, root, n_calib, seed, 16)
    with torch.no_grad(): return model(cx.to(dev)).cpu()

def compare(a, b, rtol):
    "Largest relative difference of two lists of floats, and whether it is within `rtol`."
    d = max(abs(x - y) / max(abs(x), abs(y), 1e-12) for x, y in zip(a, b))
    return {'max_rel_diff': d, 'rtol': rtol, 'ok': d <= rtol}

def main(a):
    if a.second == 'cuda' and not torch.cuda.is_available(): sys.exit('device_agree: no CUDA device here (torch.cuda.is_available() is False)')
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = a.tf32
    res = {'command': ' '.join([Path(sys.executable).name] + sys.argv),
           'device_name': torch.cuda.get_device_name(0) if a.second == 'cuda' else a.second,
           'tf32': a.tf32, 'versions': versions(), 'runs': {}}
    lc, lg = fp_logits(a.arch, a.data, a.n_calib, 0, 'cpu'), fp_logits(a.arch, a.data, a.n_calib, 0, a.second)
    res['fp_logits'] = {'max_abs_diff': (lc - lg).abs().max().item(), 'max_abs_logit': lc.abs().max().item(),
                        'same_argmax': bool((lc.argmax(1) == lg.argmax(1)).all())}
    for method in a.methods:
        cfg = preset('cpu', meta='paper' if method == 'metaaug' else None, method=method, wbits=a.wbits, abits=a.abits,
                     iters=a.iters, seed=0, compile=False)
        if method == 'metaaug': cfg = cfg.replace(meta=cfg.meta.replace(iters=a.meta_iters))
        c, g = (run_ptq(a.arch, cfg, data=a.data, n_calib=a.n_calib, n_test=a.n_test, device=dev, show_progress=False)
                for dev in ('cpu', a.second))
        res['runs'][method] = {
            'settings': {'wbits': a.wbits, 'abits': a.abits, 'iters': a.iters, 'n_calib': a.n_calib, 'n_test': a.n_test},
            'first_unit_rtn_error': compare([c['units'][0]['rtn_error']], [g['units'][0]['rtn_error']], a.rtol),
            'rtn_error': {u['unit']: (u['rtn_error'], v['rtn_error']) for u, v in zip(c['units'], g['units'])},
            'final_error': {u['unit']: (u['final_error'], v['final_error']) for u, v in zip(c['units'], g['units'])},
            'test_top1': {'cpu': c['test_top1'], 'cuda': g['test_top1'], 'diff': g['test_top1'] - c['test_top1']},
            'calib_top1': {'cpu': c['calib_top1'], 'cuda': g['calib_top1']},
            'quant_s': {'cpu': c['quant_s'], 'cuda': g['quant_s']}, 'meta_s': {'cpu': c['meta_s'], 'cuda': g['meta_s']}}
        res['ok'] = ok(res, a)
        atomic_write_bytes(a.out, json.dumps(res, indent=1).encode())  # after each method: a timeout keeps what is done
    print(json.dumps({k: v for k, v in res.items() if k != 'versions'}, indent=1))

def ok(res, a):
    "Same-input figures within float tolerance, and test top-1 within `--top1_tol` points, for every method run so far."
    return (res['fp_logits']['max_abs_diff'] <= a.atol and res['fp_logits']['same_argmax']
            and all(r['first_unit_rtn_error']['ok'] and abs(r['test_top1']['diff']) <= a.top1_tol for r in res['runs'].values()))

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='resnet20'); p.add_argument('--data', default=None)
    p.add_argument('--methods', nargs='+', default=['geniem', 'metaaug'])
    p.add_argument('--wbits', type=int, default=4); p.add_argument('--abits', type=int, default=4)
    p.add_argument('--iters', type=int, default=300); p.add_argument('--meta_iters', type=int, default=20)
    p.add_argument('--n_calib', type=int, default=128); p.add_argument('--n_test', type=int, default=2000)
    p.add_argument('--atol', type=float, default=1e-3, help='FP logits, CPU vs CUDA')
    p.add_argument('--rtol', type=float, default=1e-3, help="the first unit's round-to-nearest error, CPU vs CUDA")
    p.add_argument('--tf32', action='store_true', help="allow TF32 on CUDA (PyTorch's default for convolutions)")
    p.add_argument('--top1_tol', type=float, default=1.5, help='test top-1 points after reconstruction, CPU vs CUDA')
    p.add_argument('--threads', type=int, default=torch.get_num_threads(), help='CPU threads')
    p.add_argument('--second', default='cuda', help="the device compared with the CPU ('cpu' checks this script itself)")
    p.add_argument('--out', default='benchmarks/results/device_agree.json')
    main(p.parse_args())
