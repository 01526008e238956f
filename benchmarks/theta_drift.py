#!/usr/bin/env python
"""How far a flavour's meta phase moves the unit's quantizer parameters θ before its final reconstruction (issue 3).

With `reset_theta=False` (the `paper` and `tuned` flavours) the stepped θ of the last meta iteration is copied into
the unit, so its reconstruction starts from there instead of from its initialisation. This runs the meta phase of
the chosen flavour at the `cpu` budget on the given units of ResNet-20 W2A2, real CIFAR-10 calibration images
(`--n_calib`, `--seed`), T from the warm-up cache (or warmed up now), and reports per quantizer parameter the
relative change ‖θ_after − θ_before‖ / ‖θ_before‖ (and, for rounding logits, the largest change and the fraction
whose sign flipped): the unit record's `meta_theta_change`, None for a flavour that resets θ. Earlier units stay at their initialisation (round-to-nearest weights): no reconstruction runs,
so the figures show the size of the drift, not a pipeline run's exact values.

    OMP_NUM_THREADS=1 python benchmarks/theta_drift.py --units layer1.0 layer3.2 --flavour tuned --seed 8
"""
import argparse, json, warnings

import torch

from speed import HERE, header, load, prepare_unit, write_results
from metaaug.capture import tail_after
from metaaug.data import resolve_data_root
from metaaug.meta import MetaContext, meta_phase
from metaaug.models import build_model
from metaaug.pipeline import load_run_data, prepare_meta, preset
from metaaug.wrap import quantize_model, set_mode

def main(a):
    torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    cfg = preset('cpu', meta=a.flavour, seed=a.seed, wbits=2, abits=2); mcfg = cfg.meta
    model = build_model('resnet20').eval()
    (calib, _), _ = load_run_data('cifar10', resolve_data_root(None), a.n_calib, a.seed, 16)
    qm = quantize_model(model, calib[:2], cfg.quant)
    run = prepare_meta(model, qm, calib, cfg, show_progress=False)  # the pipeline's folded FP model, its outputs, and T (cached warm-up)
    res = header(flavour=a.flavour, reset_theta=mcfg.reset_theta, inner_rule=mcfg.inner_rule, warmup_cached=run.T.warmup_history['cached']) | {'units': []}
    for name in qm.units:
        d = prepare_unit(model, qm, name, calib, 32)
        if name in a.units:
            ctx = MetaContext(run.fp, qm, name, calib, d.x_q, run.fp_logits, tail_after(run.fp, name), run.fp_feats)
            rec = meta_phase(ctx, run.T, mcfg, torch.Generator().manual_seed(a.seed), show_progress=False)
            res['units'].append({'unit': name, 'drift': rec['meta_theta_change'], 'load': load()})  # None: θ reset, the unit unchanged
            print(json.dumps(res['units'][-1]), flush=True)
        set_mode(qm.unit(name), 'hard')
    write_results(a.out, res)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--units', nargs='+', default=['layer1.0', 'layer2.0', 'layer3.0', 'layer3.2'])
    p.add_argument('--flavour', default='tuned', help='MetaAug flavour (a key of META_PRESETS) at the cpu budget')
    p.add_argument('--n_calib', type=int, default=256); p.add_argument('--seed', type=int, default=8)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=str(HERE / 'results' / 'theta_drift.json'))
    main(p.parse_args())
