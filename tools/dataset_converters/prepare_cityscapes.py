"""Cityscapes: train-id semantic PNGs and COCO-format panoptic annotations via cityscapesscripts.

Runs the official converters through their Python APIs:
  * ``createTrainIdLabelImgs`` → ``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` (255 = ignore);
  * ``createPanopticImgs.convert2panoptic`` → ``gtFine/cityscapes_panoptic_<split>.json`` and
    ``gtFine/cityscapes_panoptic_<split>/*_gtFine_panoptic.png`` with label-id categories (7..33; the
    dataset maps them to train ids 0..18 by rank); image file names are then corrected to the real
    ``*_leftImg8bit.png`` (cityscapesscripts 2.x writes ``*_gtFine_leftImg8bit.png``).
cityscapesscripts finds the data through the ``CITYSCAPES_DATASET`` environment variable; ``--root`` sets
it (default: ``$CITYSCAPES_DATASET`` or ``data/cityscapes``). Needs ``pip install cityscapesscripts``.

Example::

    CITYSCAPES_DATASET=data/cityscapes python tools/dataset_converters/prepare_cityscapes.py --splits val
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import require_dir  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402


def prepare(root: str, splits: list[str], train_ids: bool = True, panoptic: bool = True) -> None:
    try:
        from cityscapesscripts.preparation import createPanopticImgs, createTrainIdLabelImgs
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit(f'error: cityscapesscripts is required ({e}); '
                         'pip install cityscapesscripts') from None
    gt_fine = require_dir(osp.join(root, 'gtFine'), 'Cityscapes gtFine')
    for split in splits:
        require_dir(osp.join(gt_fine, split), f'Cityscapes gtFine/{split}')
    os.environ['CITYSCAPES_DATASET'] = osp.abspath(root)  # read by createTrainIdLabelImgs.main()
    if train_ids:
        if not glob.glob(osp.join(gt_fine, '*', '*', '*_gt*_polygons.json')):
            raise SystemExit(f'error: no *_polygons.json under {gt_fine}/<split>/<city>/')
        print('[1/2] createTrainIdLabelImgs (all splits with polygons)', file=sys.stderr)
        createTrainIdLabelImgs.main()
    if panoptic:
        if not glob.glob(osp.join(gt_fine, splits[0], '*', '*_instanceIds.png')):
            raise SystemExit(f'error: no *_instanceIds.png under {gt_fine}/{splits[0]}/<city>/')
        print(f'[2/2] createPanopticImgs for {splits}', file=sys.stderr)
        createPanopticImgs.convert2panoptic(cityscapesPath=gt_fine, outputFolder=gt_fine, useTrainId=False,
                                            setNames=list(splits))
        for split in splits:
            fix_image_file_names(osp.join(gt_fine, f'cityscapes_panoptic_{split}.json'))


def fix_image_file_names(json_path: str) -> int:
    """cityscapesscripts 2.x names images ``*_gtFine_leftImg8bit.png``; the files are ``*_leftImg8bit.png``.

    detectron2 sidesteps this by matching images on ``image_id``; we rewrite ``images[].file_name`` so the
    JSON points at real files. Returns the number of names fixed.
    """
    with open(json_path, encoding='utf-8') as f:
        doc = json.load(f)
    fixed = 0
    for image in doc['images']:
        name = image['file_name']
        if name.endswith('_gtFine_leftImg8bit.png'):
            image['file_name'] = name.replace('_gtFine_leftImg8bit.png', '_leftImg8bit.png')
            fixed += 1
    if fixed:
        with open(json_path, 'w', encoding='utf-8') as f:
            json.dump(doc, f)
    return fixed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default=os.environ.get('CITYSCAPES_DATASET', 'data/cityscapes'),
                        help='Cityscapes root with leftImg8bit/ and gtFine/ (default $CITYSCAPES_DATASET)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'])
    parser.add_argument('--skip-train-ids', action='store_true', help='do not create *_labelTrainIds.png')
    parser.add_argument('--skip-panoptic', action='store_true', help='do not create the panoptic JSON/PNGs')
    args = parser.parse_args(argv)
    prepare(args.root, args.splits, not args.skip_train_ids, not args.skip_panoptic)
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
