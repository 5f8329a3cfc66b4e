"""Open-vocabulary panoptic segmentation of one image (or a folder) with an FC-CLIP checkpoint.

    python tools/demo.py IMAGE --config C --checkpoint K [--vocabulary "cat,kitty;dog"] --out DIR

Writes ``<name>_panoptic.png`` (overlay), ``<name>_semantic.png`` (when semantic output is on) and
``<name>.json`` (segments: id, category, synonyms, isthing, score, area) per image into ``--out``.
The vocabulary is ``;``-separated classes with ``,``-separated synonyms (FC-CLIP demo format); without
``--vocabulary`` the config's test dataset vocabulary is used. ``--things`` lists which of the custom
classes are things (default: all).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Any, Optional, Sequence

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from ovseg.utils.launch import add_repo_root_to_path  # noqa: E402
from ovseg.vocabulary import load_category_meta, resolve_vocabulary  # noqa: E402

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='FC-CLIP open-vocabulary demo')
    p.add_argument('images', nargs='+', help='image files or folders')
    p.add_argument('--config', required=True)
    p.add_argument('--checkpoint', default=None, help='checkpoint (mmengine or converted FC-CLIP)')
    p.add_argument('--vocabulary',
                   default=None,
                   help='"a1,a2;b1" classes (; separated) with synonyms (, separated; one class: "a1;"), a '
                   'vocabulary name (coco_panoptic, ade20k_150, ...) or a .txt/.json file; default: the config '
                   'test dataset vocabulary')
    p.add_argument('--things',
                   default=None,
                   help='comma-separated 0/1 per custom class (1 = thing); default all things')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--alpha', type=float, default=None, help='override geometric_ensemble_alpha')
    p.add_argument('--beta', type=float, default=None, help='override geometric_ensemble_beta')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    return p.parse_args(argv)


def _dataset_cfg(cfg: Config) -> dict:
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            return loader['dataset']
    raise KeyError('config has no test/val/train dataloader to take a vocabulary or pipeline from')


def config_vocabulary(cfg: Config) -> tuple[list, Optional[list], list]:
    """(class_synonyms, is_thing, palette) of the config's test dataset, without loading annotations."""
    from ovseg.engine.hooks.vocabulary_hook import dataset_metainfo
    from ovseg.registry import DATASETS
    ds_cfg = dict(_dataset_cfg(cfg))
    inner = ds_cfg
    while 'dataset' in inner and isinstance(inner['dataset'], dict):  # wrappers
        inner = inner['dataset']
    try:
        try:
            dataset = DATASETS.build(dict(inner, lazy_init=True))
        except TypeError:
            dataset = DATASETS.build(inner)
        meta = dataset_metainfo(dataset)
        return [list(s) for s in meta['class_synonyms']], meta.get('is_thing'), meta.get('palette')
    except (FileNotFoundError, OSError, ValueError) as exc:
        # The data is not on this machine: the vocabulary name in the dataset config is enough.
        name = inner.get('vocabulary')
        if not name:
            raise RuntimeError(
                f'cannot read the config dataset vocabulary ({exc}); pass --vocabulary') from exc
        syns, things = resolve_vocabulary(name)
        palette = None
        try:
            cats = load_category_meta(name)
            if len(cats) == len(syns) and all('color' in c for c in cats):
                palette = [tuple(c['color']) for c in cats]
        except FileNotFoundError:
            pass
        return syns, things, palette


def build_pipeline(cfg: Config):
    """The config's test pipeline without annotation loading (image → resize → pack)."""
    from mmengine.dataset import Compose
    pipeline = [dict(t) for t in _dataset_cfg(cfg).get('pipeline', [])]
    inner = _dataset_cfg(cfg)
    while not pipeline and isinstance(inner.get('dataset'), dict):
        inner = inner['dataset']
        pipeline = [dict(t) for t in inner.get('pipeline', [])]
    kept = [t for t in pipeline if 'Annotation' not in t['type']]
    if not kept:
        raise ValueError('config test pipeline is empty')
    return Compose(kept)


def build_model(cfg: Config, checkpoint: Optional[str], device: str):
    from mmengine.runner import load_checkpoint
    from ovseg.registry import MODELS
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    return model.to(device).eval()


def list_images(items: Sequence[str]) -> list[str]:
    out = []
    for item in items:
        if osp.isdir(item):
            out += sorted(osp.join(item, f) for f in os.listdir(item) if f.lower().endswith(IMG_EXTS))
        else:
            out.append(item)
    return out


def run_demo(model,
             pipeline,
             images: Sequence[str],
             classes: Sequence[Sequence[str]],
             out_dir: str,
             palette: Optional[Sequence] = None) -> list[dict]:
    """Predict each image and write overlays + JSON; returns one summary dict per image."""
    from mmengine.dataset import pseudo_collate
    from ovseg.visualization import default_palette, draw_panoptic, draw_semantic
    os.makedirs(out_dir, exist_ok=True)
    names = [c[0] for c in classes]
    palette = palette if palette and len(palette) >= len(names) else default_palette(len(names))
    summaries = []
    for i, path in enumerate(images):
        data = pipeline(dict(img_path=path, img_id=i))
        with torch.no_grad():
            sample = model.test_step(pseudo_collate([data]))[0]
        img = cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1]
        stem = osp.splitext(osp.basename(path))[0]
        record: dict[str, Any] = dict(image=path)
        if 'pred_panoptic_seg' in sample:
            pan = sample.pred_panoptic_seg.data[0].cpu().numpy()
            segs = sample.get('pred_segments_info', [])
            vis = draw_panoptic(img, pan, segs, names, palette)
            record['panoptic_png'] = osp.join(out_dir, f'{stem}_panoptic.png')
            cv2.imwrite(record['panoptic_png'], np.ascontiguousarray(vis[:, :, ::-1]))
            record['segments'] = [
                dict(id=int(s['id']),
                     category_id=int(s['category_id']),
                     category=names[s['category_id']],
                     synonyms=list(classes[s['category_id']]),
                     isthing=bool(s['isthing']),
                     score=round(float(s.get('score', 0.0)), 4),
                     area=int((pan == s['id']).sum())) for s in segs
            ]
        if 'pred_sem_seg' in sample:
            sem = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
            vis = draw_semantic(img, sem, palette)
            record['semantic_png'] = osp.join(out_dir, f'{stem}_semantic.png')
            cv2.imwrite(record['semantic_png'], np.ascontiguousarray(vis[:, :, ::-1]))
            labels, counts = np.unique(sem, return_counts=True)
            record['semantic_classes'] = {names[int(k)]: int(v) for k, v in zip(labels, counts)}
        with open(osp.join(out_dir, f'{stem}.json'), 'w') as f:
            json.dump(record, f, indent=1)
        summaries.append(record)
    return summaries


def main(argv: Optional[Sequence[str]] = None) -> list[dict]:
    args = parse_args(argv)
    add_repo_root_to_path()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'ovseg'))
    for key, val in (('geometric_ensemble_alpha', args.alpha), ('geometric_ensemble_beta', args.beta)):
        if val is not None:
            cfg.model.setdefault('test_cfg', {})[key] = val

    palette = None
    if args.vocabulary:
        things = None if args.things is None else [t.strip() in ('1', 'true', 'True') for t in args.things.split(',')]
        classes, is_thing = resolve_vocabulary(args.vocabulary, things)  # checks len(things) == classes
        if is_thing is None:
            is_thing = [True] * len(classes)
    else:
        classes, is_thing, palette = config_vocabulary(cfg)

    model = build_model(cfg, args.checkpoint, args.device)
    train_vocab = cfg.get('train_vocabulary')
    if train_vocab is not None:
        tr_syns, tr_thing = resolve_vocabulary(train_vocab)
        model.set_vocabulary(tr_syns, tr_thing, split='train')
    model.set_vocabulary(classes, is_thing, split='test')
    pipeline = build_pipeline(cfg)
    summaries = run_demo(model, pipeline, list_images(args.images), classes, args.out, palette)
    for rec in summaries:
        segs = rec.get('segments', [])
        print(f"{rec['image']}: {len(segs)} segments "
              f"({', '.join(sorted({s['category'] for s in segs})) or 'none'}) -> "
              f"{rec.get('panoptic_png') or rec.get('semantic_png')}")
    return summaries


if __name__ == '__main__':
    main()
