"""A real interrupted run: `metaaug_ptq` killed with SIGKILL in the middle of a unit, resumed with `--resume`,
compared with the same run uninterrupted. Writes one JSON record.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/kill_resume.py --out benchmarks/results/kill_resume.json

The kill comes right after the checkpoint first holds a unit in progress at index >= `--kill_unit` (so the
resumed process continues that unit from its saved step, not from the unit's start)."""
import argparse, json, os, signal, subprocess, sys, tempfile, time
from pathlib import Path

from metaaug.checkpoint import CheckpointError, read_checked

def ptq(args, work, name, extra=()):
    "Start one `metaaug_ptq` process writing `work/<name>.jsonl`."
    exe = Path(sys.executable).with_name('metaaug_ptq')
    cmd = [str(exe), *args, '--out', str(work/f'{name}.jsonl'), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(work/f'{name}.err', 'w'))

def unit_in_progress(ck):
    "(index of the unit in progress, its phase, step) from the checkpoint, or None."
    try: c = read_checked(ck)
    except CheckpointError: return None
    p = c.get('partial')
    return None if p is None else (c['units'].index(p['unit']), p['unit'], p['phase'], p['loop']['step'])

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n_calib', type=int, default=128); ap.add_argument('--iters', type=int, default=200)
    ap.add_argument('--meta_iters', type=int, default=10); ap.add_argument('--n_test', type=int, default=1000)
    ap.add_argument('--checkpoint_every', type=int, default=50); ap.add_argument('--kill_unit', type=int, default=5)
    ap.add_argument('--bits', default='4/4'); ap.add_argument('--out', default='benchmarks/results/kill_resume.json')
    a = ap.parse_args()
    w, b = a.bits.split('/')
    args = ['--arch', 'resnet20', '--method', 'metaaug', '--wbits', w, '--abits', b, '--preset', 'smoke', '--n_calib', str(a.n_calib),
            '--iters', str(a.iters), '--meta_iters', str(a.meta_iters), '--n_test', str(a.n_test), '--device', 'cpu', '--seed', '0', '--quiet']
    with tempfile.TemporaryDirectory() as d:
        work, ck = Path(d), Path(d)/'run.ckpt'
        t0 = time.time(); assert ptq(args, work, 'plain').wait() == 0, (work/'plain.err').read_text()[-2000:]
        plain_s = time.time() - t0
        t0, p = time.time(), ptq(args, work, 'killed', ['--checkpoint', str(ck), '--checkpoint_every', str(a.checkpoint_every)])
        while p.poll() is None and ((u := unit_in_progress(ck)) is None or u[0] < a.kill_unit): time.sleep(0.2)
        assert p.poll() is None, 'the run ended before it could be killed: lower --kill_unit'
        os.kill(p.pid, signal.SIGKILL); p.wait(); killed_s = time.time() - t0
        t0 = time.time()
        assert ptq(args, work, 'resumed', ['--checkpoint', str(ck), '--checkpoint_every', str(a.checkpoint_every), '--resume']).wait() == 0, (work/'resumed.err').read_text()[-2000:]
        resumed_s = time.time() - t0
        plain, resumed = (json.loads((work/f'{n}.jsonl').read_text().splitlines()[-1]) for n in ('plain', 'resumed'))
    same_units = [u['final_error'] for u in plain['units']] == [u['final_error'] for u in resumed['units']]
    rec = {'command': ' '.join(['metaaug_ptq', *args]), 'checkpoint_every': a.checkpoint_every,
           'killed_in': {'unit_index': u[0], 'unit': u[1], 'phase': u[2], 'step_saved': u[3]}, 'killed_after_s': round(killed_s, 1),
           'plain': {k: plain[k] for k in ('test_top1', 'calib_top1', 'fp_top1')} | {'wall_s': round(plain_s, 1)},
           'resumed': {k: resumed[k] for k in ('test_top1', 'calib_top1')} | {'wall_s': round(resumed_s, 1), 'resumed': resumed.get('resumed')},
           'same_accuracy': (plain['test_top1'], plain['calib_top1']) == (resumed['test_top1'], resumed['calib_top1']),
           'same_unit_errors': same_units}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(rec, indent=1) + '\n')
    print(json.dumps(rec, indent=1))

if __name__ == '__main__': main()
