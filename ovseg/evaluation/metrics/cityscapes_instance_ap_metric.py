"""``CityscapesInstanceAPMetric``: Cityscapes instance AP from cityscapesScripts' own evaluation.

FC-CLIP reports Cityscapes AP through detectron2's ``CityscapesInstanceEvaluator``: one ``<image>_pred.txt``
per image listing ``<mask png> <label id> <score>``, binary mask PNGs, and cityscapesScripts'
``evalInstanceLevelSemanticLabeling.evaluateImgLists`` against the ``*_gtFine_instanceIds.png`` ground truth
(overlaps 0.5:0.95, minimum region 100 px, void and group regions as the script handles them). That protocol
differs from COCO AP on panoptic thing segments, so this metric writes exactly those files (on the rank that
computes; ``process`` keeps RLE masks, which gather cheaply across ranks) and calls the script.
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
import os.path as osp
import tempfile
import types
from collections.abc import Iterator, Mapping, Sequence
from glob import glob
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from PIL import Image
from pycocotools import mask as mask_util

from ovseg.registry import METRICS

from ._utils import meta_classes, read_pred_instances
from .instance_ap_metric import encode_mask

GT_SUFFIX = '_gtFine_instanceIds.png'


def cityscapes_stem(img_path: str) -> str:
    """``.../aachen_000000_000019_leftImg8bit.png`` → ``aachen_000000_000019`` (city_sequence_frame)."""
    name = osp.splitext(osp.basename(str(img_path)))[0]
    parts = name.split('_')
    if len(parts) < 3:
        raise ValueError(f"image '{img_path}' is not named <city>_<sequence>_<frame>_*: cannot find its "
                         'Cityscapes ground truth')
    return '_'.join(parts[:3])


class _NumpyCompat(types.ModuleType):
    """numpy as cityscapesScripts 2.3 expects it (written for numpy 1.x), for its instance evaluation only:
    ``in1d`` (removed in numpy 2.4; ``isin(...).ravel()`` is its documented replacement) and a
    ``count_nonzero`` that returns a Python int over the whole array (numpy 2 returns a numpy integer, which
    the script's ``json.dumps(..., default=lambda o: o.__dict__)`` of its matches cannot serialise)."""

    def __init__(self) -> None:
        super().__init__('numpy')

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def in1d(ar1: Any, ar2: Any, assume_unique: bool = False, invert: bool = False) -> np.ndarray:
        return np.isin(ar1, ar2, assume_unique=assume_unique, invert=invert).ravel()

    @staticmethod
    def count_nonzero(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
        n = np.count_nonzero(a, axis=axis, keepdims=keepdims)
        return int(n) if axis is None and not keepdims else n


@contextlib.contextmanager
def _numpy_compat(module: types.ModuleType) -> Iterator[None]:
    """Give ``module`` the numpy 1.x behaviour it relies on for the duration of the call (numpy untouched)."""
    if getattr(module, 'np', None) is not np:
        yield
        return
    module.np = _NumpyCompat()
    try:
        yield
    finally:
        module.np = np


def evaluate_instance_files(pred_dir: str, gt_files: Sequence[str]) -> dict[str, Any]:
    """Run cityscapesScripts' instance evaluation on the prediction files under ``pred_dir``.

    Returns its ``averages`` dict (``allAp``, ``allAp50%``, ``classes``). Settings as detectron2's
    ``CityscapesInstanceEvaluator.evaluate``: the script's default overlaps / region sizes, no JSON or colour
    output, the GT instance cache written next to the predictions. Runs inside ``pred_dir`` because the script
    writes ``matches.json`` to the working directory; its ``printError`` exits, which becomes a RuntimeError.
    """
    # optional test dependency (cityscapesscripts), needed only when this protocol is evaluated
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs_eval

    args = copy.copy(cs_eval.args)  # the module keeps a global CArgs; do not leak our settings into it
    args.predictionPath = osp.abspath(pred_dir)
    args.predictionWalk = None
    args.JSONOutput = False
    args.colorized = False
    args.quiet = True
    args.csv = False
    args.gtInstancesFile = osp.join(osp.abspath(pred_dir), 'gtInstances.json')
    args.exportFile = osp.join(osp.abspath(pred_dir), 'resultInstanceLevelSemanticLabeling.json')
    out = io.StringIO()
    try:
        with contextlib.chdir(pred_dir), contextlib.redirect_stdout(out), _numpy_compat(cs_eval):
            preds = [cs_eval.getPrediction(gt, args) for gt in gt_files]
            res = cs_eval.evaluateImgLists(preds, list(gt_files), args)
    except SystemExit as e:
        raise RuntimeError(f'cityscapesScripts instance evaluation failed: {out.getvalue().strip()[-500:]}') from e
    return res['averages']


@METRICS.register_module()
class CityscapesInstanceAPMetric(BaseMetric):
    """Cityscapes AP / AP50 of ``pred_instances`` with cityscapesScripts (FC-CLIP's Cityscapes protocol).

    Reports ``mAP`` (the script's ``allAp``, averaged over overlaps 0.5:0.95 — FC-CLIP's "CS mAP") and ``AP50``.

    Predicted thing classes are written with their Cityscapes label id (``dataset_meta['category_ids']``, the
    panoptic JSON's label ids: car = 26, ...). The GT of a sample whose image is
    ``leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` is
    ``<gt_dir>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png``. detectron2 evaluates every GT file under
    ``gt_dir``; here the evaluated images are the dataset's, and GT files under ``gt_dir`` that no sample covered
    are counted and reported (they are the same set on the full val split).

    Args:
        gt_dir: ``gtFine/val`` of the Cityscapes root (per-city folders of ``*_gtFine_instanceIds.png``).
        classwise: also return ``AP-<class>`` / ``AP50-<class>``.
        keep_files: write the prediction files here (kept) instead of a temporary directory.
    """

    default_prefix: str | None = 'instance'

    def __init__(self, gt_dir: str, classwise: bool = False, keep_files: str | None = None,
                 collect_device: str = 'cpu', prefix: str | None = None, collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if not gt_dir:
            raise ValueError('CityscapesInstanceAPMetric needs gt_dir (gtFine/val)')
        self.gt_dir = gt_dir
        self.classwise = classwise
        self.keep_files = keep_files

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        _, is_thing = meta_classes(self.dataset_meta, type(self).__name__)
        cat_ids = list((self.dataset_meta or {}).get('category_ids') or [])
        if len(cat_ids) != len(is_thing):
            raise ValueError(f'{type(self).__name__}: dataset_meta needs category_ids (Cityscapes label ids) for '
                             f'its {len(is_thing)} classes (got {len(cat_ids)})')
        for i, ds in enumerate(data_samples):
            img_path = ds.get('img_path')
            if not img_path:
                raise KeyError(f'sample {len(self.results) + i}: no "img_path" to find its Cityscapes GT')
            stem = cityscapes_stem(img_path)
            gt_file = osp.join(self.gt_dir, stem.split('_')[0], stem + GT_SUFFIX)
            if not osp.isfile(gt_file):
                raise FileNotFoundError(f"image '{img_path}': Cityscapes instance GT not found: {gt_file}")
            masks, labels, scores = read_pred_instances(ds, stem)
            dets = [(int(cat_ids[c]), float(s), encode_mask(m))
                    for m, c, s in zip(masks, labels, scores) if 0 <= c < len(is_thing) and is_thing[c]]
            self.results.append({'stem': stem, 'gt_file': osp.abspath(gt_file), 'dets': dets})

    def _write_predictions(self, results: list, out_dir: str) -> None:
        for r in results:
            with open(osp.join(out_dir, f"{r['stem']}_pred.txt"), 'w') as f:
                for k, (label_id, score, rle) in enumerate(r['dets']):
                    png = f"{r['stem']}_{k}_{label_id}.png"
                    Image.fromarray(mask_util.decode(rle).astype(np.uint8) * 255).save(osp.join(out_dir, png))
                    f.write(f'{png} {label_id} {score}\n')

    def compute_metrics(self, results: list) -> dict[str, float]:
        stems = [r['stem'] for r in results]
        if len(set(stems)) != len(stems):
            dup = sorted({s for s in stems if stems.count(s) > 1})[:5]
            raise ValueError(f'CityscapesInstanceAPMetric: images evaluated twice: {dup}')
        evaluated = {r['gt_file'] for r in results}
        unvisited = [g for g in glob(osp.join(self.gt_dir, '*', '*' + GT_SUFFIX)) if osp.abspath(g) not in evaluated]
        if unvisited:
            print_log(f'CityscapesInstanceAPMetric: {len(unvisited)} GT file(s) under {self.gt_dir} were not among '
                      f'the {len(results)} evaluated images (detectron2 evaluates all of them)', logger='current',
                      level=30)
        with contextlib.ExitStack() as stack:
            if self.keep_files:
                out_dir = self.keep_files
                os.makedirs(out_dir, exist_ok=True)
                stale = glob(osp.join(out_dir, '*_pred.txt')) + glob(osp.join(out_dir, 'gtInstances.json'))
                for path in stale:  # a previous run's files would be picked up as predictions / GT cache
                    os.remove(path)
            else:
                out_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix='cityscapes_instance_'))
            self._write_predictions(results, out_dir)
            avg = evaluate_instance_files(out_dir, [r['gt_file'] for r in results])
        metrics = {'mAP': 100 * float(avg['allAp']), 'AP50': 100 * float(avg['allAp50%'])}
        if self.classwise:
            for name, v in avg['classes'].items():
                metrics[f'AP-{name}'] = 100 * float(v['ap'])
                metrics[f'AP50-{name}'] = 100 * float(v['ap50%'])
        print_log('cityscapesScripts instance AP: {:.2f}  AP50: {:.2f} ({} images)'.format(
            metrics['mAP'], metrics['AP50'], len(results)), logger='current')
        return metrics
