#!/usr/bin/env python
"""Speed benchmark (issue 7): every figure is a ratio measured in this run, with interleaved repetitions.

- recon: Genie-M reconstruction iterations/s per unit, and its efficiency = FLOP/s of a reconstruction step ÷ FLOP/s
  of a micro-benchmark running the unit's conv/linear shapes alone (same batch, fwd + the same backward passes,
  contiguous and channels-last; the better layout is the denominator). Both do the same FLOPs, so the efficiency is
  t_micro / t_recon per interleaved round (median over rounds). Where bfloat16 is native (AMX / AVX512-BF16 CPUs,
  GPUs; `--recon_bf16` forces it on or off) also the same steps with `ReconConfig.compute_dtype='bfloat16'`: their
  speed-up over float32 and their efficiency against bfloat16 convs of the same shapes.
- meta: MetaAug meta-iteration time, ours (`meta_step` as the pipeline runs it: FP BatchNorms folded by `fold_bn`, T
  channels-last) vs the naive full-forward step (`naive_meta_step`, unfolded FP, contiguous T), per unit and flavour, interleaved rounds of `--meta_iters` iterations each; before timing, one step of each on the same T
  (QDrop off) checks the losses and T's gradient agree. Beside it, the most that not recomputing can give in
  arithmetic (`caching_bound`: forward multiply-adds of both steps, plus the backward both must run).
- memory: peak RSS of a ResNet-50 unit cache at 224² with N synthetic images (float32 vs bfloat16), each in its own
  subprocess; a case predicted above --mem_limit_gb (or above the available memory) is computed, not allocated.
- e2e (--e2e only): Genie-M vs MetaAug end-to-end `run_ptq` on the real data (wall time, quantization time, meta
  phase, T's warm-up, peak RSS, top-1), one subprocess per run: the two methods of a seed side by side
  (`--e2e_side_by_side`) or one after the other, alternated per seed; T's warm-up fresh unless `--no-e2e_fresh_warmup`.

Every figure carries os.getloadavg() and the thread count at the time it was measured.
The process (and each child) first calls `metaaug.core.keep_freed_memory()`, as `run_ptq` and the CLI do; `--malloc
system` keeps glibc's defaults, under which every activation above 32 MiB is faulted in again at every step.

    OMP_NUM_THREADS=1 python benchmarks/speed.py                     # default, ~5 min at 1 thread
    OMP_NUM_THREADS=1 python benchmarks/speed.py --archs resnet20 resnet56 --rounds 5 --compile
    OMP_NUM_THREADS=1 python benchmarks/speed.py --archs resnet18 --size 224 --n_calib 64 --skip meta memory --compile
    python benchmarks/speed.py --skip recon meta memory --e2e --e2e_archs resnet20 resnet56 --threads 2
"""
import argparse, copy, dataclasses, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from metaaug.core import atomic_write_bytes, cpu_name, keep_freed_memory, module_device, native_bf16, peak_rss_mb, proc_status_mb, to_jsonable
from metaaug.capture import cache_unit, tail_after
from metaaug.fixtures import tiny_images
from metaaug.meta import META_PRESETS, MetaContext, caching_bound, fp_outputs, meta_phase, meta_step, naive_meta_step, step_macs, theta_groups
from metaaug.models import build_model, fold_bn
from metaaug.pipeline import CACHE_DTYPES, preset, versions
from metaaug.reconstruct import ReconConfig, reconstruct
from metaaug.transform import UNet
from metaaug.wrap import QuantConfig, QuantLayer, calibrating, quantize_model, set_mode

HERE = Path(__file__).resolve().parent

def load():
    "Load average and thread count, recorded next to every figure."
    return {'loadavg': [round(v, 2) for v in os.getloadavg()], 'threads': torch.get_num_threads()}

def device_name(dev):
    return torch.cuda.get_device_name(dev) if dev.type == 'cuda' else cpu_name()

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def timed(fn, dev):
    sync(dev); t0 = time.perf_counter(); fn(); sync(dev)
    return time.perf_counter() - t0

def med(xs): return statistics.median(xs) if xs else None

def apply_malloc(a) -> bool:
    "`keep_freed_memory()` as `run_ptq` calls it, unless `--malloc system` (glibc's defaults); True if applied."
    return keep_freed_memory() if a.malloc == 'kept' else False

def header(**fields) -> dict:
    "The start of every results file: the command, the versions, `fields`, and the load at the start."
    return {'command': ' '.join([Path(sys.executable).name] + sys.argv), 'versions': versions(), **fields, 'start': load()}

def write_results(path, res:dict):
    "Stamp the load at the end and write `res` as indented JSON, atomically."
    res['end'] = load(); atomic_write_bytes(path, json.dumps(to_jsonable(res), indent=1).encode())

# ---------------------------------------------------------------- model and the sequential unit pass

def bench_setup(arch, n, dev, seed=0, size=32):
    "FP model (pretrained if the weights are found, else random), QModel W2A2, `n` synthetic `size`² calibration images."
    try: model, weights = build_model(arch), 'pretrained'
    except Exception: model, weights = build_model(arch, pretrained=False), 'random'
    model = model.to(dev).eval()
    calib = tiny_images(n, size=size, seed=seed).to(dev)
    return model, quantize_model(model, calib[:2], QuantConfig(2, 2)), calib, weights

def prepare_unit(model, qm, name, calib, bs):
    "The pipeline's order: cache (earlier units final), calibrate, soft."
    d = cache_unit(model, qm, name, calib, batch_size=bs)
    unit = qm.unit(name); set_mode(unit, 'soft')
    with calibrating(unit): unit(d.x_q[:bs].to(module_device(qm)))
    return d

# ---------------------------------------------------------------- reconstruction vs the conv micro-benchmark

def layer_shapes(unit, d, bs, dev):
    "Shapes of every conv / linear of the unit in a reconstruction step, and whether its input needs a gradient."
    shapes, hs = [], []
    def hook(m, a):
        l = m.layer
        shapes.append({'kind': 'conv' if isinstance(l, nn.Conv2d) else 'linear', 'x': tuple(a[0].shape), 'w': tuple(l.weight.shape),
                       'input_grad': bool(a[0].requires_grad), 'bias': l.bias is not None,
                       **({k: getattr(l, k) for k in ('stride', 'padding', 'dilation', 'groups')} if isinstance(l, nn.Conv2d) else {})})
    hs = [m.register_forward_pre_hook(hook) for m in unit.modules() if isinstance(m, QuantLayer)]
    set_mode(unit, 'soft', qdrop=True)
    try: unit(d.x_q[:bs].to(dev))
    finally:
        for h in hs: h.remove()
    return shapes

def shape_flops(s):
    "FLOPs of one reconstruction step for this layer: forward, weight gradient, input gradient (when needed)."
    if s['kind'] == 'conv':
        n, cin, h, w = s['x']; cout, cpg, kh, kw = s['w']
        ho = (h + 2 * s['padding'][0] - s['dilation'][0] * (kh - 1) - 1) // s['stride'][0] + 1
        wo = (w + 2 * s['padding'][1] - s['dilation'][1] * (kw - 1) - 1) // s['stride'][1] + 1
        macs = n * cout * ho * wo * cpg * kh * kw
    else: macs = s['x'][0] * s['w'][0] * s['w'][1]
    return 2 * macs * (2 + int(s['input_grad']))

def micro_tensors(shapes, dev, channels_last, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    out = []
    for s in shapes:
        x, w = torch.randn(s['x'], generator=g).to(dev, dtype), (0.1 * torch.randn(s['w'], generator=g)).to(dev, dtype)
        if channels_last and x.dim() == 4: x, w = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
        b = torch.zeros(s['w'][0], device=dev, dtype=dtype) if s['bias'] else None
        out.append((x.requires_grad_(s['input_grad']), w.requires_grad_(), b))
    return out

def micro_steps(shapes, tensors, k):
    "k steps of the unit's layers alone: forward + backward (weight grad, input grad where the recon step needs it)."
    for _ in range(k):
        for s, (x, w, b) in zip(shapes, tensors):
            y = F.conv2d(x, w, b, s['stride'], s['padding'], s['dilation'], s['groups']) if s['kind'] == 'conv' else F.linear(x, w, b)
            y.sum().backward()
            x.grad = w.grad = None

def bench_recon(unit, d, a, dev, name):
    """Interleaved rounds: k recon steps (contiguous, channels-last), k micro steps (contiguous, channels-last); with
    `a.bf16` also k recon steps with `compute_dtype='bfloat16'` and k bfloat16 micro steps (both layouts)."""
    shapes = layer_shapes(unit, d, a.recon_batch, dev)
    flops = sum(shape_flops(s) for s in shapes)
    cfg = preset('cpu').recon.replace(iters=a.recon_iters, log_every=a.recon_iters, batch_size=a.recon_batch, compile=a.compile)
    dtypes = {'': 'float32', '_bf16': 'bfloat16'} if a.bf16 else {'': 'float32'}  # suffix of the timing keys -> compute dtype
    tens = {(sfx, cl): micro_tensors(shapes, dev, cl, getattr(torch, dt)) for sfx, dt in dtypes.items() for cl in (False, True)}
    gen = torch.Generator().manual_seed(0)
    def recon(cl, dtype='float32'): reconstruct(unit, d, cfg.replace(channels_last=cl, compute_dtype=dtype), name=name, generator=gen, show_progress=False)
    for sfx, dt in dtypes.items():  # warm-up (and compile)
        recon(False, dt); micro_steps(shapes, tens[sfx, False], 1); micro_steps(shapes, tens[sfx, True], 1)
    t, loads = {}, []
    for _ in range(a.rounds):
        for sfx, dt in dtypes.items():
            t.setdefault(f'recon{sfx}', []).append(timed(lambda: recon(False, dt), dev))
            if not sfx: t.setdefault('recon_cl', []).append(timed(lambda: recon(True), dev))  # channels-last: float32 only
            for cl in (False, True): t.setdefault(f"micro{sfx}{'_cl' if cl else ''}", []).append(timed(lambda: micro_steps(shapes, tens[sfx, cl], a.recon_iters), dev))
        loads.append(load())
    k = a.recon_iters
    best = {sfx: [min(m, mc) for m, mc in zip(t[f'micro{sfx}'], t[f'micro{sfx}_cl'])] for sfx in dtypes}  # the better layout per round
    best_micro = best['']
    bf16 = {} if '_bf16' not in dtypes else {
        'recon_bf16_it_s': k / med(t['recon_bf16']), 'bf16_speedup': med([r / r16 for r, r16 in zip(t['recon'], t['recon_bf16'])]),
        'micro_bf16_gflop_s': flops * k / min(med(t['micro_bf16']), med(t['micro_bf16_cl'])) / 1e9,
        'efficiency_bf16': med([m / r for m, r in zip(best['_bf16'], t['recon_bf16'])]),  # against bfloat16 convs of the same shapes
        'efficiency_bf16_vs_float32_convs': med([m / r for m, r in zip(best_micro, t['recon_bf16'])])}
    return {'unit': name, 'batch': a.recon_batch, 'compile': a.compile, 'flops_per_step': flops,
            'recon_it_s': k / med(t['recon']), 'recon_cl_it_s': k / med(t['recon_cl']),
            'recon_gflop_s': flops * k / med(t['recon']) / 1e9,
            'micro_gflop_s': flops * k / med(t['micro']) / 1e9, 'micro_cl_gflop_s': flops * k / med(t['micro_cl']) / 1e9,
            'efficiency': med([m / r for m, r in zip(best_micro, t['recon'])]),
            'efficiency_cl': med([m / r for m, r in zip(best_micro, t['recon_cl'])]),
            'micro_cl_over_contiguous': med([m / mc for m, mc in zip(t['micro'], t['micro_cl'])]), **bf16,
            'layers': len(shapes), 'rounds': a.rounds, 'iters_per_round': k, 'load': loads[-1], 'load_per_round': loads}

# ---------------------------------------------------------------- meta iteration: ours vs naive

def _one_step(fn, ctx, T, fmt, mcfg, groups):
    "Loss values and T's flat gradient of one step of `fn` on a copy of T in memory format `fmt`."
    t = copy.deepcopy(T).to(memory_format=fmt)
    theta = {n: p.detach().clone().requires_grad_() for n, p in ctx.unit.named_parameters() if n in groups}
    _, out = fn(ctx, t, theta, 5.0, mcfg, torch.Generator().manual_seed(1), groups)
    g = torch.cat([x.flatten() for x in torch.autograd.grad(out['total'], list(t.parameters()))])
    return {'L_Q': out['inner'].item(), **{f'L_{k}': v.item() for k, v in out['terms'].items()}, 'L_T': out['total'].item()}, g

def _rel(a, b):
    "Max relative difference of the losses and of the gradient (relative to its largest entry) of `a` against `b`."
    (la, ga), (lb, gb) = a, b
    return {'loss': max(abs(la[k] - lb[k]) / max(abs(lb[k]), 1e-12) for k in lb), 'grad': float((ga - gb).abs().max() / gb.abs().max().clamp_min(1e-30))}

def meta_check(ctxs, T, mcfg):
    """QDrop off, same draws. 'cache': ours vs the naive step on the same FP model and T layout (what the caching
    changes: must agree to float rounding); 'fold': the naive step on the folded vs the unfolded FP model;
    'layout': the naive step with T channels-last vs contiguous (a different conv algorithm)."""
    set_mode(ctxs['ours'].unit, 'soft', qdrop=False)
    groups, cl, cont = theta_groups(ctxs['ours'].unit), torch.channels_last, torch.contiguous_format
    ours = _one_step(meta_step, ctxs['ours'], T, cl, mcfg, groups)
    naive = {(k, f): _one_step(naive_meta_step, ctxs[k], T, fmt, mcfg, groups) for k, f, fmt in
             (('ours', 'cl', cl), ('naive', 'cl', cl), ('naive', 'cont', cont))}
    cache = _rel(ours, naive['ours', 'cl'])
    return {'losses_ours': ours[0], 'losses_naive': naive['naive', 'cont'][0], 'cache': cache,
            'fold': _rel(naive['ours', 'cl'], naive['naive', 'cl']), 'layout': _rel(naive['naive', 'cl'], naive['naive', 'cont']),
            'same': cache['loss'] < 1e-4 and cache['grad'] < 1e-3}

def bound_record(ctxs, T, mcfg) -> dict:
    "Forward multiply-adds of both steps (`step_macs`) and `caching_bound`: what not recomputing can give in arithmetic."
    o, nv = step_macs(meta_step, ctxs['ours'], T, mcfg), step_macs(naive_meta_step, ctxs['naive'], T, mcfg)
    return {'forward_macs_ours': o['all'], 'forward_macs_naive': nv['all'], 'backward_macs_at_least': o['differentiated'],
            'forward_ratio': nv['all'] / o['all'], 'bound': caching_bound(o, nv)}

def bench_meta(model, qm, name, calib, d, run, a, flavour):
    "Interleaved rounds of `meta_iters` meta iterations with `meta_step` and with `naive_meta_step` (each on its own copy of T)."
    mcfg = preset('cpu', meta=flavour).meta.replace(iters=a.meta_iters, diag_every=0)
    mcfgs = {'ours': mcfg, 'naive': mcfg.replace(channels_last=False)}  # naive: the official design (contiguous T, unfolded FP)
    ctxs = {k: MetaContext(run[k]['fp'], qm, name, calib, d.x_q, run[k]['logits'], tail_after(run[k]['fp'], name), run[k]['feats']) for k in mcfgs}
    T0 = UNet(mcfg.transform).to(calib.device)
    check = meta_check(ctxs, T0, mcfg)
    bound = bound_record(ctxs, T0, mcfg)  # QDrop still off from the check
    state = {n: p.detach().clone() for n, p in ctxs['ours'].unit.named_parameters()}
    Ts, t, loads = {'ours': copy.deepcopy(T0), 'naive': copy.deepcopy(T0)}, {'ours': [], 'naive': []}, []
    fns = {'ours': meta_step, 'naive': naive_meta_step}
    def phase(k, iters):
        meta_phase(ctxs[k], Ts[k], mcfgs[k].replace(iters=iters), torch.Generator().manual_seed(0), show_progress=False, step_fn=fns[k])
    phase('ours', 1); phase('naive', 1)  # warm-up
    for r in range(a.rounds):
        for k in (('ours', 'naive') if r % 2 == 0 else ('naive', 'ours')): t[k].append(timed(lambda: phase(k, a.meta_iters), calib.device))
        loads.append(load())
    with torch.no_grad():  # the paper flavour writes θ back: leave the unit as it was
        for n, p in ctxs['ours'].unit.named_parameters(): p.copy_(state[n])
    return {'unit': name, 'flavour': flavour, 'ours': 'meta_step, FP BatchNorms folded (fold_bn), T channels-last', 'naive': 'naive_meta_step, unfolded FP, contiguous T', 'batch_size': mcfg.batch_size, 'val_batch': mcfg.val_batch, 'transform': dataclasses.asdict(mcfg.transform),
            'ours_s_per_iter': med(t['ours']) / a.meta_iters, 'naive_s_per_iter': med(t['naive']) / a.meta_iters,
            'speedup': med([n / o for n, o in zip(t['naive'], t['ours'])]), 'caching_bound': bound, 'check': check,
            'rounds': a.rounds, 'iters_per_round': a.meta_iters, 'load': loads[-1], 'load_per_round': loads}

def bench_arch(arch, a, dev):
    model, qm, calib, weights = bench_setup(arch, a.n_calib, dev, size=a.size)
    run = {}
    for k, fp in (('ours', fold_bn(model, within=qm.units)), ('naive', copy.deepcopy(model).eval().requires_grad_(False))):
        logits, feats = fp_outputs(fp, calib, a.recon_batch)
        run[k] = {'fp': fp, 'logits': logits, 'feats': feats}
    out = {'arch': arch, 'weights': weights, 'n_calib': a.n_calib, 'size': a.size, 'recon': [], 'meta': []}
    meta_units = set(a.meta_units) if a.meta_units else set(qm.units[1:-1])
    for name in qm.units:
        d = prepare_unit(model, qm, name, calib, a.recon_batch)
        if 'recon' not in a.skip and (not a.recon_units or name in a.recon_units):
            out['recon'].append(bench_recon(qm.unit(name), d, a, dev, name)); print(json.dumps(_short(out['recon'][-1])), flush=True)
        if 'meta' not in a.skip and name in meta_units:
            for flavour in a.flavours:
                out['meta'].append(bench_meta(model, qm, name, calib, d, run, a, flavour)); print(json.dumps(_short(out['meta'][-1])), flush=True)
        set_mode(qm.unit(name), 'hard')  # final before the next unit
    return out

def _short(r): return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k not in ('load_per_round', 'transform', 'check', 'caching_bound')} | (
    {'caching_bound': round(r['caching_bound']['bound'], 2)} if 'caching_bound' in r else {}) | (
    {'same': r['check']['same'], 'cache': r['check']['cache'], 'fold': r['check']['fold']} if 'check' in r else {})

# ---------------------------------------------------------------- memory of a ResNet-50 unit cache

def mem_available_gb():
    try: return next(int(l.split()[1]) for l in open('/proc/meminfo') if l.startswith('MemAvailable:')) / 2**20
    except (OSError, StopIteration): return float('inf')

def resnet50_unit_bytes(unit, size, dtype):
    "Bytes per image of the unit cache (X_fp, X_q, Y) and of one image, from a one-image forward."
    import torchvision
    m = torchvision.models.resnet50(weights=None).eval()
    got = {}
    mod = m.get_submodule(unit)
    h1 = mod.register_forward_pre_hook(lambda mm, a: got.update(x=a[0].numel()))
    h2 = mod.register_forward_hook(lambda mm, a, o: got.update(y=o.numel()))
    with torch.no_grad(): m(torch.zeros(1, 3, size, size))
    h1.remove(); h2.remove()
    es = torch.empty((), dtype=dtype).element_size()
    return (2 * got['x'] + got['y']) * es, 3 * size * size * 4

def memory_child(a):
    "Runs in its own process: build the cache, report peak RSS."
    import torchvision
    torch.set_num_threads(a.threads); apply_malloc(a)
    dtype = CACHE_DTYPES[a._mem_child]
    m = torchvision.models.resnet50(weights=None).eval().requires_grad_(False)
    imgs = torch.randn(a.mem_n, 3, a.mem_size, a.mem_size, generator=torch.Generator().manual_seed(0))
    qm = quantize_model(m, imgs[:2], QuantConfig(4, 4))
    base, t0 = proc_status_mb('VmRSS'), time.perf_counter()
    d = cache_unit(m, qm, a.mem_unit, imgs, batch_size=a.mem_batch, store='cpu', dtype=dtype)
    cache = sum(t.numel() * t.element_size() for t in (d.x_fp, d.x_q, d.y))
    print(json.dumps({'dtype': a._mem_child, 'cache_gb': cache / 2**30, 'rss_before_cache_mb': base,
                      'peak_rss_mb': peak_rss_mb(), 'capture_s': time.perf_counter() - t0, **load()}))

def bench_memory(a):
    out = {'model': 'torchvision resnet50 (random weights)', 'unit': a.mem_unit, 'n': a.mem_n, 'size': a.mem_size, 'capture_batch': a.mem_batch, 'cases': []}
    for dt in ('float32', 'bfloat16'):
        per, img = resnet50_unit_bytes(a.mem_unit, a.mem_size, CACHE_DTYPES[dt])
        cache_gb = per * a.mem_n / 2**30
        # capture() fills preallocated storage batch by batch: images + cache + ~2 GB of model, libraries and one batch
        predicted = (img * a.mem_n + per * a.mem_n) / 2**30 + 2.0
        case = {'dtype': dt, 'cache_gb_computed': cache_gb, 'predicted_peak_gb': predicted, 'mem_available_gb': mem_available_gb()}
        if predicted > min(a.mem_limit_gb, mem_available_gb() - 2):
            case.update(allocated=False, note=f'predicted peak {predicted:.1f} GB exceeds the limit; size computed, not allocated', **load())
        else:
            cmd = [sys.executable, __file__, '--_mem_child', dt] + [f'--{k}={getattr(a, k)}' for k in ('mem_n', 'mem_size', 'mem_unit', 'mem_batch', 'threads', 'malloc')]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode: case.update(allocated=False, error=r.stderr[-2000:], **load())
            else: case.update(allocated=True, **json.loads(r.stdout.strip().splitlines()[-1]))
        out['cases'].append(case); print(json.dumps(case), flush=True)
    ok = [c for c in out['cases'] if c.get('allocated')]
    if len(ok) == 2: out['bf16_over_fp32_peak'] = ok[1]['peak_rss_mb'] / ok[0]['peak_rss_mb']
    return out

# ---------------------------------------------------------------- end to end (not run by default)

def e2e_child(a):
    from metaaug.pipeline import run_ptq
    torch.set_num_threads(a.threads)
    arch, method, seed = a._e2e_child.split(':')
    cfg = preset('cpu', meta=a.e2e_meta if method == 'metaaug' else None, method=method, wbits=a.e2e_wbits, abits=a.e2e_abits, seed=int(seed), iters=a.e2e_iters)
    if a.e2e_meta_iters is not None: cfg = cfg.replace(meta=cfg.meta.replace(iters=a.e2e_meta_iters))
    r = run_ptq(arch, cfg, n_calib=a.e2e_n_calib, n_test=a.e2e_n_test, device=a.device, show_progress=False, keep_freed=a.malloc == 'kept')
    w = r.get('warmup') or {}
    print(json.dumps({k: r.get(k) for k in ('arch', 'method', 'seed', 'wbits', 'abits', 'n_calib', 'iters', 'wall_s', 'quant_s', 'meta_s',
                                            'peak_rss_mb', 'quant_peak_rss_mb', 'fp_top1', 'test_top1', 'calib_top1')}
                     | {'warmup_s': w.get('time_s'), 'warmup_cached': w.get('cached'), 'warmup_steps': w.get('steps')} | load()))

def _e2e_cmd(a, arch, method, seed):
    return [sys.executable, __file__, '--_e2e_child', f'{arch}:{method}:{seed}'] + [f'--{k}={getattr(a, k)}' for k in
            ('e2e_meta', 'e2e_iters', 'e2e_meta_iters', 'e2e_n_calib', 'e2e_n_test', 'e2e_wbits', 'e2e_abits', 'device', 'threads', 'malloc') if getattr(a, k) is not None]

def _e2e_runs(a, arch, seed, cache) -> list[dict]:
    """Genie-M and MetaAug on one (arch, seed): side by side (`--e2e_side_by_side`, so both see the same load) or one
    after the other, alternated per seed. With `cache`, MetaAug's T warm-up goes to that (fresh) folder, so it is measured."""
    methods = ('geniem', 'metaaug') if seed % 2 == 0 else ('metaaug', 'geniem')
    env = os.environ | ({'METAAUG_CACHE': str(cache)} if cache else {})
    def start(m): return subprocess.Popen(_e2e_cmd(a, arch, m, seed), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    def result(m, proc):
        out, err = proc.communicate()
        return json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else {'arch': arch, 'method': m, 'seed': seed, 'error': err[-2000:]}
    if a.e2e_side_by_side:
        procs = {m: start(m) for m in methods}
        return [result(m, p) for m, p in procs.items()]
    return [result(m, start(m)) for m in methods]

def bench_e2e(a, res:dict, out):
    "End-to-end pairs; the rows so far are written to `out` after each pair (a long run loses nothing it measured)."
    rows = res.setdefault('e2e', {'runs': [], 'iters': a.e2e_iters, 'meta_iters': a.e2e_meta_iters, 'meta': a.e2e_meta, 'bits': [a.e2e_wbits, a.e2e_abits],
                                  'n_calib': a.e2e_n_calib, 'n_test': a.e2e_n_test, 'side_by_side': a.e2e_side_by_side,
                                  'fresh_warmup': a.e2e_fresh_warmup})['runs']
    for arch in a.e2e_archs:
        for seed in a.e2e_seeds:
            with tempfile.TemporaryDirectory(prefix='metaaug-e2e-cache-') as tmp:
                for r in _e2e_runs(a, arch, seed, tmp if a.e2e_fresh_warmup else None):
                    rows.append(r); print(json.dumps(r), flush=True)
            res['e2e']['metaaug_over_geniem'] = e2e_ratios(rows, a.e2e_archs, a.e2e_seeds)
            write_results(out, res)
    return res['e2e']

def e2e_ratios(rows, archs, seeds) -> dict:
    "Per arch, the median over seeds of MetaAug / Genie-M for the quantization time, the wall time and the peak memory (the process's and the quantization's own)."
    out = {}
    for arch in archs:
        per = {}
        for seed in seeds:
            w = {r['method']: r for r in rows if r.get('arch') == arch and r.get('seed') == seed and 'error' not in r}
            if {'geniem', 'metaaug'} <= set(w):
                for k in ('quant_s', 'wall_s', 'peak_rss_mb', 'quant_peak_rss_mb'):
                    if w['metaaug'].get(k) and w['geniem'].get(k): per.setdefault(k, []).append(w['metaaug'][k] / w['geniem'][k])
        if per: out[arch] = {k: med(v) for k, v in per.items()}
    return out

# ---------------------------------------------------------------- main

def main(a):
    torch.set_num_threads(a.threads)
    a.malloc_kept = apply_malloc(a)
    dev = torch.device('cuda' if a.device == 'auto' and torch.cuda.is_available() else ('cpu' if a.device == 'auto' else a.device))
    # TF32 convolutions (PyTorch's CUDA default) differ from float32 by ~1e-3 relative, more than the ours-vs-naive check allows
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = a.tf32
    a.bf16 = native_bf16(dev) if a.recon_bf16 is None else a.recon_bf16
    res = header(device=str(dev), device_name=device_name(dev), tf32=a.tf32, malloc=a.malloc, malloc_kept=a.malloc_kept) | {'archs': []}
    t0 = time.perf_counter()
    def save():  # after every stage, so a long run keeps what it measured
        res['summary'] = summary(res); res['wall_s'] = time.perf_counter() - t0
        write_results(a.out, res)
    if not {'recon', 'meta'} <= set(a.skip):
        for arch in a.archs: res['archs'].append(bench_arch(arch, a, dev)); save()
    if 'memory' not in a.skip: res['memory'] = bench_memory(a); save()
    if a.e2e: bench_e2e(a, res, a.out)
    save()
    print(json.dumps(res['summary'], indent=1))

def summary(res):
    s = {}
    for r in res['archs']:
        if r['recon']: s[f"{r['arch']} recon efficiency (median over units)"] = med([u['efficiency'] for u in r['recon']])
        if r['recon']: s[f"{r['arch']} recon efficiency per unit"] = {u['unit']: round(u['efficiency'], 2) for u in r['recon']}
        if r['recon']: s[f"{r['arch']} recon it/s per unit"] = {u['unit']: round(u['recon_it_s'], 1) for u in r['recon']}
        if r['recon'] and 'bf16_speedup' in r['recon'][0]:
            s[f"{r['arch']} recon bfloat16 speed-up per unit"] = {u['unit']: round(u['bf16_speedup'], 2) for u in r['recon']}
            s[f"{r['arch']} recon bfloat16 efficiency against bfloat16 convs (median over units)"] = med([u['efficiency_bf16'] for u in r['recon']])
        for fl in {m['flavour'] for m in r['meta']}:
            ms = [m for m in r['meta'] if m['flavour'] == fl]
            s[f"{r['arch']} meta speedup ours vs naive, {fl}"] = {m['unit']: round(m['speedup'], 2) for m in ms}
            s[f"{r['arch']} meta same losses, {fl}"] = all(m['check']['same'] for m in ms)
            s[f"{r['arch']} meta caching bound (arithmetic), {fl}"] = {m['unit']: round(m['caching_bound']['bound'], 2) for m in ms}
    if 'memory' in res: s['memory peak RSS MB'] = {c['dtype']: c.get('peak_rss_mb', f"computed {c['cache_gb_computed']:.2f} GB cache") for c in res['memory']['cases']}
    if res.get('e2e', {}).get('metaaug_over_geniem'): s['e2e metaaug/geniem (median over seeds)'] = res['e2e']['metaaug_over_geniem']
    return s

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--archs', nargs='+', default=['resnet20'], help='networks for recon and meta: CIFAR ResNets, or any registry name with --size 224')
    p.add_argument('--size', type=int, default=32, help='side of the synthetic calibration images (32: CIFAR; 224: ImageNet networks)')
    p.add_argument('--skip', nargs='*', default=[], choices=['recon', 'meta', 'memory'])
    p.add_argument('--threads', type=int, default=1); p.add_argument('--device', default='auto')
    p.add_argument('--rounds', type=int, default=3, help='interleaved repetitions per figure')
    p.add_argument('--tf32', action='store_true', help='allow TF32 on CUDA (then the ours-vs-naive check is only good to ~1e-3)')
    p.add_argument('--n_calib', type=int, default=256, help='synthetic calibration images (recon and meta)')
    p.add_argument('--recon_iters', type=int, default=10); p.add_argument('--recon_batch', type=int, default=32)
    p.add_argument('--recon_bf16', action=argparse.BooleanOptionalAction, default=None, help="also time recon with compute_dtype='bfloat16' (default: where bfloat16 is native)")
    p.add_argument('--recon_units', nargs='*', default=None); p.add_argument('--compile', action='store_true', help='fused activation quantizers in the recon steps')
    p.add_argument('--meta_iters', type=int, default=3); p.add_argument('--meta_units', nargs='*', default=['layer1.0', 'layer2.0', 'layer3.0'])
    p.add_argument('--flavours', nargs='+', default=['official', 'paper'])
    p.add_argument('--mem_n', type=int, default=1024); p.add_argument('--mem_size', type=int, default=224)
    p.add_argument('--mem_unit', default='layer1.0'); p.add_argument('--mem_batch', type=int, default=32)
    p.add_argument('--mem_limit_gb', type=float, default=12.0)
    p.add_argument('--e2e', action='store_true', help='Genie-M vs MetaAug end to end (real data; long)')
    p.add_argument('--e2e_archs', nargs='+', default=['resnet20']); p.add_argument('--e2e_seeds', nargs='+', type=int, default=[0])
    p.add_argument('--e2e_meta', default='official'); p.add_argument('--e2e_iters', type=int, default=2000, help='reconstruction iterations per unit (both methods)')
    p.add_argument('--e2e_meta_iters', type=int, default=None, help="meta iterations per unit (default: the cpu preset's)")
    p.add_argument('--e2e_n_calib', type=int, default=1024); p.add_argument('--e2e_n_test', type=int, default=None)
    p.add_argument('--e2e_wbits', type=int, default=2); p.add_argument('--e2e_abits', type=int, default=2)
    p.add_argument('--e2e_side_by_side', action='store_true', help="run each seed's Genie-M and MetaAug at the same time (same load)")
    p.add_argument('--e2e_fresh_warmup', action=argparse.BooleanOptionalAction, default=True,
                   help="MetaAug's T warm-up in a fresh cache folder, so its time is part of the run (--no-e2e_fresh_warmup: use the user cache)")
    p.add_argument('--malloc', choices=['kept', 'system'], default='kept', help="kept: metaaug.core.keep_freed_memory() first, as run_ptq does; system: glibc's defaults")
    p.add_argument('--out', default=str(HERE / 'results' / 'speed.json'))
    p.add_argument('--_mem_child', default=None, help=argparse.SUPPRESS); p.add_argument('--_e2e_child', default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._mem_child: memory_child(a)
    elif a._e2e_child: e2e_child(a)
    else: main(a)
