#!/usr/bin/env python
"""Where a meta iteration's time goes (issue 7), and what folding the FP model and a channels-last T change.

- stages: one `meta_step` cut at its stage boundaries (T forward, FP pass on T(x), the earlier quantized units on
  T(x), the unit, the differentiable inner gradient, the L_val forward, margin + L_DP, the backward to T), median
  over `--iters` iterations after one warm-up; the backward is also split into L_DP's path to T(x), L_val's path to
  T(x) and T's own backward (each timed alone, so they need not add up to the full backward). Run as the pipeline
  runs it (FP BatchNorms folded, T channels-last) and as before (unfolded, contiguous).
- micro: the FP model's pooled features forward + backward to the input (batch 16), folded vs unfolded; T's forward
  + backward (batch 16), channels-last vs contiguous; one identity warm-up step (batch 32), channels-last vs
  contiguous. Interleaved rounds, medians.

Synthetic calibration images (`tiny_images`), the pretrained ResNet-20 when its weights are found. Every figure
carries os.getloadavg() and the thread count at the time it was measured.

    OMP_NUM_THREADS=1 python benchmarks/meta_stages.py                      # ~2 min at 1 thread
    OMP_NUM_THREADS=1 python benchmarks/meta_stages.py --units layer1.0 layer3.0 --flavour official
"""
import argparse, copy, json, time

import torch
from torch.func import functional_call

from speed import HERE, bench_setup, header, load, med, prepare_unit, write_results
from metaaug.capture import run_to, tail_after
from metaaug.losses import kl_val_loss, margin_loss, t_loss_weights, total_t_loss
from metaaug.meta import CACHEABLE_DP, MetaContext, _dp_term, _round_reg, _stepped, _val_logits, fp_features, fp_outputs, fp_pass, no_param_grads, t_gradient, theta_groups
from metaaug.models import fold_bn
from metaaug.pipeline import preset
from metaaug.reconstruct import recon_loss
from metaaug.transform import UNet, _warmup_step
from metaaug.wrap import set_mode

CL = torch.channels_last

def stage_times(ctx, T, mcfg, iters, gen):
    "Per stage, the median time in ms of `iters` cut-up `meta_step`s (after one warm-up iteration)."
    unit, params, groups, w = ctx.unit, list(T.parameters()), theta_groups(ctx.unit), mcfg.losses
    weights = t_loss_weights(w)
    theta = {n: p.detach().clone().requires_grad_() for n, p in unit.named_parameters() if n in groups}
    acc = {}
    for it in range(iters + 1):
        marks = [time.perf_counter()]
        def mark(k):
            marks.append(time.perf_counter())
            if it: acc.setdefault(k, []).append(1e3 * (marks[-1] - marks[-2]))
        xi = torch.randperm(len(ctx.calib), generator=gen)[:mcfg.batch_size]; x = ctx.calib[xi]
        tx = T(x); mark('T forward')
        share = weights['dp'] > 0 and w.dp_form in CACHEABLE_DP
        y, f_tx = fp_pass(ctx, tx, feats=share); mark('FP pass on T(x)')
        with no_param_grads(ctx.qm): a_q = run_to(ctx.qm, unit, tx)
        mark('earlier quantized units on T(x)')
        lq = recon_loss(functional_call(unit, theta, (a_q,)), y) + _round_reg(theta, 5.0, mcfg); mark('unit forward (inner loss)')
        theta1 = _stepped(theta, lq, groups, mcfg); mark('inner gradient (create_graph)')
        vidx = torch.randperm(len(ctx.calib), generator=gen)[:mcfg.val_batch]
        terms = {'val': kl_val_loss(_val_logits(ctx, theta1, vidx), ctx.fp_logits[vidx], w.tau)}; mark('L_val forward (unit + FP tail)')
        if weights['margin'] > 0: terms['margin'] = margin_loss(x, tx, w.margin, per_image=w.margin_form == 'image')
        if weights['dp'] > 0: terms['dp'] = _dp_term(ctx, x, xi, tx, f_tx, w, gen)
        mark('margin + L_DP forward')
        _, parts = total_t_loss(terms, w)
        if 'dp' in parts: torch.autograd.grad(parts['dp'], [tx], retain_graph=True)
        mark('alone: L_DP backward to T(x)')
        torch.autograd.grad(parts['val'], [tx], retain_graph=True); mark("alone: L_val backward to T(x)")
        torch.autograd.grad(tx, params, torch.ones_like(tx), retain_graph=True); mark("alone: T's backward")
        t_gradient(parts, params, mcfg.val_share); mark('backward to T (as the meta phase runs it)')
    out = {k: med(v) for k, v in acc.items()}
    out['iteration (stages, without the "alone" ones)'] = sum(v for k, v in out.items() if not k.startswith('alone'))
    return out

def bench_stages(a):
    model, qm, calib, weights = bench_setup('resnet20', a.n_calib, torch.device('cpu'))
    fps = {'folded, T channels-last': fold_bn(model, within=qm.units), 'unfolded, T contiguous': copy.deepcopy(model).eval().requires_grad_(False)}
    outs = {k: fp_outputs(fp, calib, 32) for k, fp in fps.items()}
    mcfg = preset('cpu', meta=a.flavour).meta
    T0, res = UNet(mcfg.transform), []
    for name in qm.units:
        prepare = prepare_unit(model, qm, name, calib, 32)
        if name in a.units:
            set_mode(qm.unit(name), 'soft', qdrop=True)
            row = {'unit': name, 'flavour': a.flavour, 'weights': weights}
            for k, fp in fps.items():
                ctx = MetaContext(fp, qm, name, calib, prepare.x_q, outs[k][0], tail_after(fp, name), outs[k][1])
                T = copy.deepcopy(T0).to(memory_format=CL if 'channels-last' in k else torch.contiguous_format)
                row[k] = stage_times(ctx, T, mcfg, a.iters, torch.Generator().manual_seed(0)) | {'load': load()}
            res.append(row); print(json.dumps({'unit': name, **{k: round(row[k]['iteration (stages, without the "alone" ones)'], 1) for k in fps}}), flush=True)
        set_mode(qm.unit(name), 'hard')
    return res

def interleaved(fns, rounds, reps):
    "Median ms per call of each function, interleaved rounds of `reps` calls after one warm-up call each."
    for f in fns.values(): f()
    t = {k: [] for k in fns}
    for r in range(rounds):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t0 = time.perf_counter()
            for _ in range(reps): fns[k]()
            t[k].append(1e3 * (time.perf_counter() - t0) / reps)
    return {k: med(v) for k, v in t.items()} | {'load': load()}

def bench_micro(a):
    model, qm, calib, _ = bench_setup('resnet20', a.n_calib, torch.device('cpu'))
    fp, ffp = copy.deepcopy(model).eval().requires_grad_(False), fold_bn(model, within=qm.units)
    x16 = calib[:16].clone().requires_grad_()
    feats = interleaved({'unfolded': lambda: torch.autograd.grad(fp_features(fp, x16).sum(), x16),
                         'folded': lambda: torch.autograd.grad(fp_features(ffp, x16).sum(), x16)}, a.rounds, a.reps)
    cfg = preset('cpu').meta.transform
    Ts = {k: UNet(cfg).to(memory_format=f) for k, f in (('contiguous', torch.contiguous_format), ('channels-last', CL))}
    for T in Ts.values(): T.load_state_dict(Ts['contiguous'].state_dict())
    t_fb = interleaved({k: (lambda T=T: T(calib[:16]).sum().backward()) for k, T in Ts.items()}, a.rounds, a.reps)
    opts, g = {k: torch.optim.Adam(T.parameters(), 1e-3) for k, T in Ts.items()}, torch.Generator().manual_seed(0)
    warm = interleaved({k: (lambda k=k: _warmup_step(Ts[k], opts[k], calib, torch.randperm(len(calib), generator=g)[:32], 'cpu')) for k in Ts}, a.rounds, a.reps)
    return {'FP features forward + backward, batch 16 (ms)': feats, "T's forward + backward, batch 16 (ms)": t_fb,
            'warm-up step, batch 32 (ms)': warm, 'transform': cfg.to_dict()}

def main(a):
    torch.set_num_threads(a.threads)
    res = header()
    if 'stages' not in a.skip: res['stages'] = bench_stages(a)
    if 'micro' not in a.skip: res['micro'] = bench_micro(a); print(json.dumps({k: v for k, v in res['micro'].items() if k != 'transform'}), flush=True)
    write_results(a.out, res)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--units', nargs='+', default=['layer1.0', 'layer2.0', 'layer3.0'])
    p.add_argument('--flavour', default='tuned', help='MetaAug flavour (a key of META_PRESETS) at the cpu budget')
    p.add_argument('--iters', type=int, default=10, help='timed iterations per stage table')
    p.add_argument('--rounds', type=int, default=4); p.add_argument('--reps', type=int, default=10, help='calls per micro round')
    p.add_argument('--n_calib', type=int, default=256); p.add_argument('--threads', type=int, default=1)
    p.add_argument('--skip', nargs='*', default=[], choices=['stages', 'micro'])
    p.add_argument('--out', default=str(HERE / 'results' / 'meta_stages.json'))
    main(p.parse_args())
