#!/usr/bin/env python
"""Build the layout of ../shared (what the lessons and CI read) from the canonical downloads, on a machine that is online:
CIFAR-10 as JPEG folders (1,000 train images per class, the whole test split) and the CIFAR ResNet-20/56 weights.
ImageNet cannot be downloaded without an account: put ILSVRC2012 folders at <root>/data/imagenet/{train,val} by hand
(the lessons that need them say so and skip their checks when they are missing).

    python tools/make_shared.py ../shared
"""
import shutil, sys
from pathlib import Path
import torchvision
from metaaug.models import resolve_weights

root = Path(sys.argv[1] if len(sys.argv) > 1 else '../shared').resolve()
for split, train in (('train', True), ('test', False)):
    ds, count = torchvision.datasets.CIFAR10(root/'download', train=train, download=True), {}
    for img, y in ds:
        c = ds.classes[y]
        if count.get(c, 0) >= 1000: continue
        d = root/'data'/'cifar10-jpeg'/split/c; d.mkdir(parents=True, exist_ok=True)
        img.save(d/f'{count.get(c, 0):04d}.jpg', quality=75); count[c] = count.get(c, 0) + 1
(root/'weights'/'cifar10').mkdir(parents=True, exist_ok=True)
for a in ('resnet20', 'resnet56'): shutil.copy(resolve_weights(a), root/'weights'/'cifar10')
print(f'built {root}')
