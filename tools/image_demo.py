"""Open-vocabulary panoptic segmentation of one image (or a folder) with an FC-CLIP checkpoint.

    python tools/image_demo.py IMAGE --config C --checkpoint K [--vocabulary "cat,kitty;dog"] --out DIR

Writes ``<name>_panoptic.png`` (overlay), ``<name>_semantic.png`` (when semantic output is on) and
``<name>.json`` (segments: id, category, synonyms, isthing, score, area) per image into ``--out``; inputs
sharing a name (``x.png``, ``x.jpg``) get distinct names (``x_png``, ``x_jpg``).
The vocabulary is ``;``-separated classes with ``,``-separated synonyms (FC-CLIP demo format); without
``--vocabulary`` the config's test dataset vocabulary is used. ``--things`` lists which of the custom
classes are things (default: all). Without ``--checkpoint`` the demo refuses to run unless
``--random-weights`` says that an untrained model is intended.

Images the test pipeline shrinks are post-processed at the model's input resolution and the final maps are
upsampled (nearest) to the image size: post-processing at full size costs queries × H × W floats (a 6000²
photo: gigabytes) for no extra detail. ``--full-res-postprocess`` restores FC-CLIP's full-size path. An
image that cannot be read or processed is reported and skipped; the exit status is 1 when any was.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from ovseg.cli import CfgOptionsAction, merge_cfg_options, run_tool
from ovseg.datasets.transforms.geometric import resize_nearest
from ovseg.datasets.transforms.loading import decode_image  # the dataset's decoder: truncation is detected
from ovseg.engine.checkpoint_files import load_model_weights
from ovseg.engine.hooks.vocabulary_hook import dataset_metainfo, train_vocabulary_of_checkpoint
from ovseg.registry import DATASETS, MODELS
from ovseg.utils.launch import add_repo_root_to_path
from ovseg.visualization import default_palette, draw_panoptic, draw_semantic
from ovseg.vocabulary import load_category_meta, resolve_vocabulary

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='FC-CLIP open-vocabulary demo')
    p.add_argument('images', nargs='+', help='image files or folders')
    p.add_argument('--config', required=True)
    p.add_argument('--checkpoint', default=None, help='checkpoint (mmengine or converted FC-CLIP)')
    p.add_argument('--random-weights', action='store_true',
                   help='run without --checkpoint: an untrained model (smoke tests only)')
    p.add_argument('--full-res-postprocess', action='store_true',
                   help="post-process at the original image size (FC-CLIP's path; memory grows with H×W)")
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
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, help='override config entries')
    return p.parse_args(argv)


def _dataset_cfg(cfg: Config) -> dict:
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            return loader['dataset']
    raise KeyError('config has no test/val/train dataloader to take a vocabulary or pipeline from')


def config_vocabulary(cfg: Config) -> tuple[list, list | None, list]:
    """(class_synonyms, is_thing, palette) of the config's test dataset, without loading annotations."""
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
    """The config's test pipeline without image and annotation loading (resize → pack)."""
    pipeline = [dict(t) for t in _dataset_cfg(cfg).get('pipeline', [])]
    inner = _dataset_cfg(cfg)
    while not pipeline and isinstance(inner.get('dataset'), dict):
        inner = inner['dataset']
        pipeline = [dict(t) for t in inner.get('pipeline', [])]
    kept = [t for t in pipeline if 'Annotation' not in t['type'] and t['type'] != 'LoadImage']
    if not kept:
        raise ValueError('config test pipeline is empty')
    return Compose(kept)  # images are decoded once, by read_image, and handed in as LoadImage would


def build_model(cfg: Config, checkpoint: str | None, device: str):
    """The config's model with ``checkpoint`` loaded weights-only (no tensor matching = an error), and the
    checkpoint's ``meta`` (its training vocabulary decides FC-CLIP's seen classes, as in ``tools/test.py``)."""
    model = MODELS.build(cfg.model)
    meta: dict = {}
    if checkpoint:
        meta = load_model_weights(model, checkpoint, warn=lambda msg: print(f'WARNING: {msg}', file=sys.stderr)).meta
    return model.to(device).eval(), meta


def parse_things(text: str, num_classes: int) -> list[bool]:
    """``--things``: one flag per class, 1/0, true/false, yes/no or thing/stuff; anything else is an error."""
    words = {'1': True, 'true': True, 'yes': True, 'thing': True, '0': False, 'false': False, 'no': False,
             'stuff': False}
    items = [t.strip().lower() for t in text.split(',')]
    bad = [t for t in items if t not in words]
    if bad:
        raise ValueError(f'--things {text!r}: {bad[0]!r} is not a flag; use 1/0, true/false, yes/no or thing/stuff')
    if len(items) != num_classes:
        raise ValueError(f'--things has {len(items)} flags for {num_classes} classes of the vocabulary')
    return [words[t] for t in items]


def output_stems(images: Sequence[str]) -> list[str]:
    """A distinct output name per input: its stem, or stem_ext when two inputs share a stem."""
    stems = [osp.splitext(osp.basename(p))[0] for p in images]
    out, used = [], set()
    for path, stem in zip(images, stems):
        name = stem if stems.count(stem) == 1 else f"{stem}_{osp.splitext(path)[1].lstrip('.').lower()}"
        base, k = name, 2
        while name in used:
            name, k = f'{base}_{k}', k + 1
        used.add(name)
        out.append(name)
    return out


def list_images(items: Sequence[str]) -> list[str]:
    """Files as given, folders expanded to their images; a folder without images or a missing path is an error."""
    out = []
    for item in items:
        if osp.isdir(item):
            found = sorted(osp.join(item, f) for f in os.listdir(item) if f.lower().endswith(IMG_EXTS))
            if not found:
                raise FileNotFoundError(f'no images ({", ".join(IMG_EXTS)}) in folder {item}')
            out += found
        elif osp.isfile(item):
            out.append(item)
        else:
            raise FileNotFoundError(f'image not found: {item}')
    return out


def read_image(path: str) -> np.ndarray:
    """RGB uint8, or a ValueError naming the file (unreadable, truncated, too thin for the model)."""
    img = decode_image(path)
    h, w = img.shape[:2]
    if min(h, w) < 8 or max(h, w) > 64 * min(h, w):
        raise ValueError(f'{path}: a {w}x{h} image cannot be segmented (needs both sides >= 8 px and an aspect '
                         'ratio of at most 64:1)')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img)  # in place: a 6000² photo is 108 MB


def _resize_nearest(label: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return resize_nearest(label, hw)


def run_demo(model,
             pipeline,
             images: Sequence[str],
             classes: Sequence[Sequence[str]],
             out_dir: str,
             palette: Sequence | None = None,
             full_res_postprocess: bool = False) -> list[dict]:
    """Predict each image and write overlays + JSON; returns one summary dict per image (``error`` on failure)."""

    os.makedirs(out_dir, exist_ok=True)
    names = [c[0] for c in classes]
    palette = palette if palette and len(palette) >= len(names) else default_palette(len(names))
    summaries = []
    for i, (path, stem) in enumerate(zip(images, output_stems(images))):
        try:
            img = read_image(path)
            ori_hw = tuple(img.shape[:2])
            data = pipeline(dict(img_path=path, img_id=i, img=img, img_shape=ori_hw, ori_shape=ori_hw,
                                 scale_factor=(1.0, 1.0), flip=False, flip_direction=None))
            model_hw = tuple(data['data_samples'].img_shape)
            shrunk = model_hw[0] * model_hw[1] < ori_hw[0] * ori_hw[1]
            if shrunk and not full_res_postprocess:  # predict at the model's size, upsample the final maps
                data['data_samples'].set_metainfo(dict(ori_shape=model_hw))
            with torch.no_grad():
                sample = model.test_step(pseudo_collate([data]))[0]
        except Exception as exc:  # noqa: BLE001 - one bad image is reported, the others still run
            print(f'ERROR {path}: {exc}', file=sys.stderr)
            summaries.append(dict(image=path, error=str(exc)))
            continue
        record: dict[str, Any] = dict(image=path)
        if 'pred_panoptic_seg' in sample:
            pan = sample.pred_panoptic_seg.data[0].cpu().numpy().astype(np.int32)
            if pan.shape != ori_hw:
                pan = _resize_nearest(pan, ori_hw)
            segs = sample.get('pred_segments_info', [])
            vis = draw_panoptic(img, pan, segs, names, palette)
            record['panoptic_png'] = osp.join(out_dir, f'{stem}_panoptic.png')
            cv2.imwrite(record['panoptic_png'], np.ascontiguousarray(vis[:, :, ::-1]))
            ids, areas = np.unique(pan, return_counts=True)
            area_of = dict(zip(ids.tolist(), areas.tolist()))
            record['segments'] = [
                dict(id=int(s['id']),
                     category_id=int(s['category_id']),
                     category=names[s['category_id']],
                     synonyms=list(classes[s['category_id']]),
                     isthing=bool(s['isthing']),
                     score=round(float(s.get('score', 0.0)), 4),
                     area=int(area_of.get(int(s['id']), 0))) for s in segs
            ]
        if 'pred_sem_seg' in sample:
            sem = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int32)
            if sem.shape != ori_hw:
                sem = _resize_nearest(sem, ori_hw)
            vis = draw_semantic(img, sem, palette)
            record['semantic_png'] = osp.join(out_dir, f'{stem}_semantic.png')
            cv2.imwrite(record['semantic_png'], np.ascontiguousarray(vis[:, :, ::-1]))
            labels, counts = np.unique(sem, return_counts=True)
            record['semantic_classes'] = {names[int(k)]: int(v) for k, v in zip(labels, counts)}
        with open(osp.join(out_dir, f'{stem}.json'), 'w') as f:
            json.dump(record, f, indent=1)
        summaries.append(record)
    return summaries


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if not args.checkpoint and not args.random_weights:
        raise ValueError('no --checkpoint: pass one (or --random-weights to run an untrained model on purpose)')
    if args.vocabulary is not None and not args.vocabulary.strip(' ;,'):
        raise ValueError('--vocabulary is empty; give classes ("cat,kitty;dog"), a vocabulary name or a file, '
                         "or leave it out for the config's vocabulary")
    images = list_images(args.images)
    add_repo_root_to_path()
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'ovseg'))
    for key, val in (('geometric_ensemble_alpha', args.alpha), ('geometric_ensemble_beta', args.beta)):
        if val is not None:
            cfg.model.setdefault('test_cfg', {})[key] = val

    palette = None
    if args.vocabulary:
        classes, is_thing = resolve_vocabulary(args.vocabulary)
        if args.things is not None:
            is_thing = parse_things(args.things, len(classes))
        if is_thing is None:
            is_thing = [True] * len(classes)
    else:
        classes, is_thing, palette = config_vocabulary(cfg)

    model, meta = build_model(cfg, args.checkpoint, args.device)
    # seen classes as VocabularyHook decides them: the checkpoint's training vocabulary, else the config's
    # train_vocabulary; a seen_vocabulary protocol key overrides both
    trained = train_vocabulary_of_checkpoint(dict(meta=meta))
    if trained is None and cfg.get('train_vocabulary') is not None:
        trained = resolve_vocabulary(cfg.train_vocabulary)
    if trained is not None:
        model.set_vocabulary(trained[0], trained[1], split='train')
    if cfg.get('seen_vocabulary') is not None and hasattr(model, 'set_seen_vocabulary'):
        model.set_seen_vocabulary(resolve_vocabulary(cfg.seen_vocabulary)[0])
    model.set_vocabulary(classes, is_thing, split='test')
    pipeline = build_pipeline(cfg)
    summaries = run_demo(model, pipeline, images, classes, args.out, palette, args.full_res_postprocess)
    failed = [rec for rec in summaries if 'error' in rec]
    for rec in summaries:
        if 'error' in rec:
            continue
        segs = rec.get('segments', [])
        print(f"{rec['image']}: {len(segs)} segments "
              f"({', '.join(sorted({s['category'] for s in segs})) or 'none'}) -> "
              f"{rec.get('panoptic_png') or rec.get('semantic_png')}")
    if failed:
        raise RuntimeError(f'{len(failed)} of {len(summaries)} images failed (see the ERROR lines above); the others '
                           f'were written to {args.out}')
    return summaries


if __name__ == '__main__':
    run_tool(main)
