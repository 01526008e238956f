#!/usr/bin/env python
"""Execute a notebook in place and keep its static outputs (text, images) for readers, e.g. the Fig. A.1 explorer
of nbs/19_widgets.ipynb on the real run. Widget views are dropped: without a kernel they cannot render (JupyterLab
would show "model not found"), and their state would add ~1 MB; each widget cell's picture is shown statically by
a later cell instead. Then `nbdev_clean` runs on the file, so `.ci/run`'s sync check stays clean.

    OMP_NUM_THREADS=1 python tools/store_outputs.py nbs/19_widgets.ipynb   # ~1 min
"""
import argparse, subprocess, sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient

WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'

def drop_widget_views(nb):
    "Remove every output that is a widget view; returns how many."
    n = 0
    for c in nb.cells:
        if c.cell_type != 'code': continue
        keep = [o for o in c.outputs if WIDGET_VIEW not in o.get('data', {})]
        n += len(c.outputs) - len(keep); c.outputs = keep
    return n

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('notebook'); p.add_argument('--timeout', type=int, default=300, help='seconds per cell')
    a = p.parse_args()
    path = Path(a.notebook).resolve()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=a.timeout, kernel_name='python3', store_widget_state=False,
                   resources={'metadata': {'path': str(path.parent)}}).execute()
    n = drop_widget_views(nb)
    nb.metadata.pop('widgets', None)
    nbformat.write(nb, path)
    subprocess.run([Path(sys.executable).parent/'nbdev_clean', '--fname', str(path)], check=True)
    print(f'{path.name}: outputs stored, {n} widget views dropped')
