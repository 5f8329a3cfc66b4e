"""FTZS: relabel the segments a label configuration deleted with the zero-shot model's classes (issue 10, §2).

    python tools/inout_vocab/ftzs_pseudo_labels.py CONFIG CHECKPOINT \
        --panoptic-json data/cityscapes/gtFine/inout/cityscapes_panoptic_train_008.json \
        --out data/cityscapes/gtFine/inout/cityscapes_panoptic_train_ftzs_008.json \
        --img-prefix leftImg8bit/train/ --seg-prefix gtFine/cityscapes_panoptic_train/ \
        [--reference-json data/cityscapes/gtFine/inout/cityscapes_panoptic_train_000.json]

For every train image: predict with CONFIG's model and test pipeline (weights from CHECKPOINT, test vocabulary
= the JSON's full class list), find the PNG ids absent from the image's ``segments_info`` (the deleted
segments), match each to the prediction with the largest panoptic IoU and keep the predicted class when
IoU > 0.5 (the rule and its VOID handling: :mod:`projects.inout_vocab.inout_vocab.pseudo_labels`), else drop
it. OUT is the input JSON with the matched segments appended to ``segments_info`` (``"pseudo_label": true``,
``"iou"``); ``images``/``categories`` are unchanged; dropped segments stay unlisted, i.e. without a target
when fine-tuning with ``unlisted_segments='no_target'``. A summary (seen = relabelled + dropped; with
``--reference-json``, how many relabels equal the original class) is printed and written to
``<out stem>.summary.json``.

Data: ``--data-root``/``--img-prefix``/``--seg-prefix``/``--img-subdir-sep``/``--vocabulary`` default to the
config's train dataloader dataset; without one (evaluation configs), data root, subdir separator and vocabulary
come from its test dataset and the two prefixes must be given (they name the train split).

Each image's result is appended to a JSONL cache (``<out>.partial.jsonl``) as soon as it is known, so a killed
run continues where it stopped (a half-written last line is dropped and reported); the cache is removed after a
run that covered every image (kept with ``--limit`` or ``--keep-cache``).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import os.path as osp
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import numpy as np  # noqa: E402

from ovseg.cli import CfgOptionsAction, merge_cfg_options, run_tool  # noqa: E402
from ovseg.structures.panoptic_format import read_panoptic_png  # noqa: E402
from ovseg.utils.atomic_io import atomic_write  # noqa: E402
from projects.inout_vocab.inout_vocab import pseudo_labels  # noqa: E402

CACHE_FORMAT = 1  # version of the JSONL cache header; bump when the per-image record changes
# Predictor: data_info of one image -> (H×W predicted ids at the image's original size, predicted segments).
Predictor = Callable[[dict], tuple[np.ndarray, list[dict]]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='FTZS pseudo-labels for deleted (out-of-vocabulary) segments',
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('config', help='config of the zero-shot model (its model and test pipeline are used)')
    p.add_argument('checkpoint', help='zero-shot checkpoint (e.g. the converted COCO FC-CLIP)')
    p.add_argument('--panoptic-json', required=True, help='train JSON of a label configuration (deleted ids '
                   'in the PNGs but not in segments_info)')
    p.add_argument('--out', required=True, help='output train JSON')
    p.add_argument('--data-root', default=None, help='dataset root (default: the config dataset data_root)')
    p.add_argument('--img-prefix', default=None, help='image folder under the data root (default: the config '
                   'train dataset data_prefix.img)')
    p.add_argument('--seg-prefix', default=None, help='panoptic PNG folder under the data root (default: the '
                   'config train dataset data_prefix.seg)')
    p.add_argument('--img-subdir-sep', default=None, help="per-city image folders: '_' for Cityscapes "
                   '(default: the config dataset img_subdir_sep)')
    p.add_argument('--vocabulary', default=None, help='synonyms of the JSON categories (name or file; default: '
                   'the config dataset vocabulary, else the JSON names)')
    p.add_argument('--reference-json', default=None, help='the full JSON (config 000): report how many '
                   'relabels equal the original class')
    p.add_argument('--iou-threshold', type=float, default=pseudo_labels.DEFAULT_IOU_THRESHOLD,
                   help='match when IoU > this (default 0.5, panopticapi)')
    p.add_argument('--limit', type=int, default=None, help='only the first K images of the JSON')
    p.add_argument('--cache', default=None, help='per-image JSONL cache (default: <out>.partial.jsonl)')
    p.add_argument('--keep-cache', action='store_true', help='keep the cache after a complete run')
    p.add_argument('--log-interval', type=int, default=50, help='progress line every N images (default 50)')
    p.add_argument('--device', default=None, help='default: cuda when available, else cpu')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, help='override config entries')
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error(f'--limit must be >= 1, got {args.limit}')
    if args.log_interval < 1:
        p.error(f'--log-interval must be >= 1, got {args.log_interval}')
    if not pseudo_labels.DEFAULT_IOU_THRESHOLD <= args.iou_threshold < 1:
        p.error(f'--iou-threshold must be in [0.5, 1) (matches are unique only above 0.5), got {args.iou_threshold}')
    return args


# ------------------------------------------------------------------------------------------------ config
def _inner_dataset(loader: Any) -> dict:
    """The dataset config of a dataloader config, through Repeat/ClassBalanced wrappers (``dataset`` keys)."""
    ds = dict((loader or {}).get('dataset') or {})
    while isinstance(ds.get('dataset'), Mapping):
        ds = dict(ds['dataset'])
    return ds


def dataset_kwargs(cfg: Any, args: argparse.Namespace) -> dict:
    """CocoPanopticDataset arguments for ``--panoptic-json``: command line > train dataset config > test one."""
    train = _inner_dataset(cfg.get('train_dataloader'))
    test = _inner_dataset(cfg.get('test_dataloader') or cfg.get('val_dataloader'))
    prefix = dict(train.get('data_prefix') or {})

    def pick(cli: Any, key: str) -> Any:
        if cli is not None:
            return cli
        return train.get(key, test.get(key))

    img, seg = args.img_prefix, args.seg_prefix
    img = prefix.get('img') if img is None else img
    seg = prefix.get('seg') if seg is None else seg
    missing = [flag for flag, v in (('--img-prefix', img), ('--seg-prefix', seg)) if v is None]
    if missing:
        raise ValueError(f'{args.config} has no train dataloader dataset with data_prefix img/seg: pass '
                         f'{" and ".join(missing)} (the train split folders under the data root)')
    return dict(ann_file=osp.abspath(args.panoptic_json), data_root=pick(args.data_root, 'data_root') or '',
                data_prefix=dict(img=img, seg=seg), img_subdir_sep=pick(args.img_subdir_sep, 'img_subdir_sep'),
                vocabulary=pick(args.vocabulary, 'vocabulary'), unlisted_segments='no_target', pipeline=[])


def test_pipeline(cfg: Any) -> Callable[[dict], dict]:
    """The config's test pipeline without annotation loading: the model sees images as ``tools/test.py`` does."""
    from mmengine.dataset import Compose

    from ovseg.datasets.builder import build_pipeline
    pipeline = _inner_dataset(cfg.get('test_dataloader') or cfg.get('val_dataloader')).get('pipeline')
    if not pipeline:
        raise ValueError('the config has no test (or val) dataloader pipeline to run the model with')
    kept = [dict(t) for t in pipeline if 'Annotation' not in str(t.get('type'))]
    return Compose(build_pipeline(kept))


def build_model(cfg: Any, checkpoint: str, device: str) -> tuple[Any, dict]:
    """The config's model with ``checkpoint`` loaded weights-only; ``(model, checkpoint meta)``.

    A tensor whose shape differs from the model's is an error (a checkpoint of another backbone); tensors
    absent from the checkpoint are a warning, because converted FC-CLIP checkpoints lack the text tower by
    design (it comes from open_clip; see tools/model_converters/fcclip_to_ovseg.py).
    """
    import ovseg.models  # noqa: F401  (registers the segmentors)
    from ovseg.engine.checkpoint_files import load_model_weights
    from ovseg.registry import MODELS
    from ovseg.utils.checkpoint_io import CheckpointFormatError

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    model = MODELS.build(cfg.model)
    fit = load_model_weights(model, checkpoint, warn=lambda msg: print(f'WARNING: {msg}', file=sys.stderr))
    if fit.shape_mismatch:
        raise CheckpointFormatError(f'{checkpoint} does not fit the model of {cfg.filename}: {fit.describe()} '
                                    '(a checkpoint for another backbone?)')
    return model.to(device).eval(), fit.meta


def set_vocabularies(model: Any, cfg: Any, checkpoint_meta: dict, dataset_meta: Mapping) -> str:
    """Test vocabulary = the dataset's full class list; train (seen) vocabulary as ``VocabularyHook`` sets it.

    FC-CLIP's geometric ensemble weighs seen classes with α and unseen ones with β, so it needs the
    vocabulary the checkpoint was trained on: the checkpoint's ``meta['dataset_meta']`` (mmengine and the
    FC-CLIP converter write it), else the config's ``train_vocabulary``; ``seen_vocabulary`` overrides both.
    This is ``tools/test.py``'s order, so pseudo-labels come from the model that the zero-shot row scores.
    Returns where the train vocabulary came from (for the log).
    """
    from ovseg.engine.hooks.vocabulary_hook import train_vocabulary_of_checkpoint
    from ovseg.vocabulary import resolve_vocabulary

    trained, source = train_vocabulary_of_checkpoint(dict(meta=checkpoint_meta)), "the checkpoint's meta"
    if trained is None and cfg.get('train_vocabulary') is not None:
        trained, source = resolve_vocabulary(cfg.train_vocabulary), f'train_vocabulary={cfg.train_vocabulary!r}'
    if trained is not None:
        model.set_vocabulary(trained[0], trained[1], split='train')
    else:
        source = 'none (every class counts as unseen)'
    if cfg.get('seen_vocabulary') is not None and hasattr(model, 'set_seen_vocabulary'):
        model.set_seen_vocabulary(resolve_vocabulary(cfg.seen_vocabulary)[0])
        source += f', seen_vocabulary={cfg.seen_vocabulary!r}'
    model.set_vocabulary([list(s) for s in dataset_meta['class_synonyms']], list(dataset_meta['is_thing']),
                         split='test')
    return source


def make_predictor(model: Any, pipeline: Callable[[dict], dict]) -> Predictor:
    """``data_info -> (ids, segments)``: one image through the test pipeline and ``model.test_step``."""
    import torch
    from mmengine.dataset import pseudo_collate

    def predict(data_info: dict) -> tuple[np.ndarray, list[dict]]:
        data = pipeline(copy.deepcopy(data_info))
        with torch.no_grad():
            sample = model.test_step(pseudo_collate([data]))[0]
        if 'pred_panoptic_seg' not in sample:
            raise ValueError('the model returned no panoptic prediction: set model.test_cfg.panoptic_on=True')
        pan = sample.pred_panoptic_seg.data[0].cpu().numpy().astype(np.int64)
        return pan, [dict(s) for s in sample.get('pred_segments_info', [])]

    return predict


# ------------------------------------------------------------------------------------------------ per image
def pseudo_label_image(data_info: Mapping, predict: Predictor, category_ids: Sequence[int],
                       iou_threshold: float) -> dict:
    """The cache record of one image: ``{'image_id', 'records': [...]}`` (one record per deleted segment)."""
    gt = read_panoptic_png(data_info['seg_map_path'])
    pan, segments = predict(dict(data_info))
    if pan.shape != gt.shape:
        raise ValueError(f'image {data_info["img_id"]!r}: prediction is {pan.shape[1]}x{pan.shape[0]} (the '
                         f'image {data_info["img_path"]} at ori_shape) but its panoptic PNG '
                         f'{data_info["seg_map_path"]} is {gt.shape[1]}x{gt.shape[0]}; image and PNG must '
                         'have the same size')
    try:
        records = pseudo_labels.relabel_unlisted_segments(gt, data_info['segments_info'], pan, segments,
                                                          iou_threshold, category_ids=category_ids)
    except ValueError as exc:
        raise ValueError(f'image {data_info["img_id"]!r} ({data_info["seg_map_path"]}): {exc}') from None
    return dict(image_id=data_info['img_id'], records=records)


# ------------------------------------------------------------------------------------------------ cache
def read_cache(path: str, header: dict) -> tuple[dict[Any, dict], int]:
    """Records of the images a previous run finished, keyed by image id, and the number of dropped lines.

    The first line is ``header`` (the inputs the records depend on); a different header is an error, not a
    silent mix of two runs. A last line that is not valid JSON (the run was killed while writing it) is cut
    off the file and counted; an invalid line before it is an error naming the line.
    """
    if not osp.isfile(path):
        return {}, 0
    with open(path, 'rb') as f:
        data = f.read()
    lines = data.split(b'\n')
    items: list[tuple[int, Any]] = []
    good_end, dropped, offset = 0, 0, 0
    for n, raw in enumerate(lines, 1):
        end = min(offset + len(raw) + 1, len(data))
        offset += len(raw) + 1
        if not raw.strip():
            continue
        try:
            items.append((n, json.loads(raw)))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if any(rest.strip() for rest in lines[n:]):
                raise ValueError(f'{path}: line {n} is not valid JSON ({exc}) and is not the last line; '
                                 'delete the cache to start over') from None
            dropped = 1
            break
        good_end = end
    if dropped or (good_end and not data[:good_end].endswith(b'\n')):
        with open(path, 'r+b') as f:  # cut the torn line; end the last good one so appends start a new line
            f.truncate(good_end)
            if good_end and not data[:good_end].endswith(b'\n'):
                f.seek(good_end)
                f.write(b'\n')
    if not items:
        return {}, dropped
    n, first = items[0]
    if not isinstance(first, dict) or 'ftzs_cache' not in first:
        raise ValueError(f'{path}: line {n} is not an FTZS cache header; delete the file or pass another --cache')
    diff = {k: (first.get(k), v) for k, v in header.items() if first.get(k) != v}
    if diff:
        what = '; '.join(f'{k}: cache {a!r} vs now {b!r}' for k, (a, b) in diff.items())
        raise ValueError(f'{path} was written for other inputs ({what}); delete it or pass another --cache')
    done: dict[Any, dict] = {}
    for n, item in items[1:]:
        if not isinstance(item, dict) or 'image_id' not in item or not isinstance(item.get('records'), list):
            raise ValueError(f'{path}: line {n} is not an image record (needs image_id and records)')
        done[item['image_id']] = item
    return done, dropped


def append_cache(path: str, item: dict) -> None:
    """One JSON line, flushed and fsynced: a kill loses at most the image being written."""
    with open(path, 'a', encoding='utf-8') as f:
        f.write(json.dumps(item) + '\n')
        f.flush()
        os.fsync(f.fileno())


# ------------------------------------------------------------------------------------------------ output
def merge_pseudo_labels(raw: dict, results: Mapping[Any, dict], where: str) -> dict:
    """``raw`` (the input JSON, changed in place) with each matched record appended to its image's segments."""
    for ann in raw['annotations']:
        item = results.get(ann['image_id'])
        if item is None:
            continue
        listed = {int(s['id']) for s in ann['segments_info']}
        for r in item['records']:
            if r['category_id'] is None:
                continue
            if int(r['id']) in listed:
                raise ValueError(f'{where}: image {ann["image_id"]!r} already lists segment {r["id"]}; the cache '
                                 'does not belong to this JSON')
            ann['segments_info'].append(dict(id=int(r['id']), category_id=int(r['category_id']),
                                             area=int(r['area']), bbox=list(r['bbox']), iscrowd=0,
                                             pseudo_label=True, iou=r['iou']))
    return raw


def reference_classes(path: str) -> dict[tuple[Any, int], int]:
    """``(image_id, segment id) -> category_id`` of the full JSON (label configuration 000)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--reference-json not found: {path}')
    with open(path, encoding='utf-8') as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f'{path}: not valid JSON ({exc})') from None
    out = {}
    for a, ann in enumerate(raw.get('annotations') or []):
        if 'image_id' not in ann or not isinstance(ann.get('segments_info'), list):
            raise ValueError(f'{path}: annotations[{a}] needs image_id and segments_info')
        for s, seg in enumerate(ann['segments_info']):
            if 'id' not in seg or 'category_id' not in seg:
                raise ValueError(f'{path}: annotations[{a}].segments_info[{s}] needs id and category_id')
            out[(ann['image_id'], int(seg['id']))] = int(seg['category_id'])
    return out


def summarize(results: Mapping[Any, dict], names: Mapping[int, str],
              reference: Mapping[tuple[Any, int], int] | None) -> dict:
    """Counts over deleted segments: seen = relabelled + dropped, per predicted class, and the reference check."""
    seen = relabelled = dropped = no_overlap = 0
    px_relabelled = px_dropped = 0
    per_class: Counter = Counter()
    same = compared = missing = 0
    confusions: Counter = Counter()
    for image_id, item in results.items():
        for r in item['records']:
            seen += 1
            if r['category_id'] is None:
                dropped += 1
                px_dropped += r['area']
                no_overlap += r['pred_id'] is None
                continue
            relabelled += 1
            px_relabelled += r['area']
            per_class[names.get(r['category_id'], str(r['category_id']))] += 1
            if reference is not None:
                true = reference.get((image_id, int(r['id'])))
                if true is None:
                    missing += 1
                    continue
                compared += 1
                same += true == r['category_id']
                if true != r['category_id']:
                    confusions[f'{names.get(true, true)} -> {names.get(r["category_id"], r["category_id"])}'] += 1
    out: dict[str, Any] = dict(deleted_segments_seen=seen, relabelled=relabelled, dropped=dropped,
                               dropped_without_overlap=no_overlap, relabelled_pixels=px_relabelled,
                               dropped_pixels=px_dropped, relabelled_per_class=dict(sorted(per_class.items())))
    if reference is not None:
        out.update(reference_compared=compared, reference_same_class=same, reference_missing=missing,
                   pseudo_label_precision=round(same / compared, 6) if compared else None,
                   reference_confusions=dict(confusions.most_common(20)))
    return out


def summary_path(out: str) -> str:
    return osp.splitext(out)[0] + '.summary.json'


# ------------------------------------------------------------------------------------------------ main
def main(argv: Sequence[str] | None = None, predictor: Predictor | None = None) -> dict:
    """Run the tool; returns the summary. ``predictor`` replaces the model (tests)."""
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    from ovseg.datasets import CocoPanopticDataset
    from ovseg.utils.launch import add_repo_root_to_path

    for what, path in (('config', args.config), ('--panoptic-json', args.panoptic_json)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    if osp.abspath(args.out) == osp.abspath(args.panoptic_json):
        raise ValueError(f'--out {args.out} would overwrite --panoptic-json; write the pseudo-labels elsewhere')
    add_repo_root_to_path()
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'ovseg'))

    dataset = CocoPanopticDataset(**dataset_kwargs(cfg, args))
    meta = dataset.metainfo
    category_ids = [int(c) for c in meta['category_ids']]
    names = dict(zip(category_ids, meta['classes']))
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    todo_infos = infos[:args.limit] if args.limit else infos
    with open(args.panoptic_json, encoding='utf-8') as f:
        raw = json.load(f)
    reference = reference_classes(args.reference_json) if args.reference_json else None

    cache = args.cache or args.out + '.partial.jsonl'
    header = dict(ftzs_cache=CACHE_FORMAT, panoptic_json=osp.abspath(args.panoptic_json),
                  checkpoint=osp.abspath(args.checkpoint), iou_threshold=args.iou_threshold)
    done, corrupt = read_cache(cache, header)
    if corrupt:
        print(f'{cache}: dropped a half-written last line (the run was killed while writing it); that image '
              'is predicted again', flush=True)
    known = {d['img_id'] for d in infos}
    foreign = [i for i in done if i not in known]
    if foreign:
        raise ValueError(f'{cache}: image id(s) {foreign[:5]} are not in {args.panoptic_json}; delete the cache')
    from_cache = sum(d['img_id'] in done for d in todo_infos)
    pending = [d for d in todo_infos if d['img_id'] not in done]
    print(f'FTZS: {len(todo_infos)} of {len(infos)} images ({from_cache} from {cache}, {len(pending)} to '
          f'predict), IoU > {args.iou_threshold}', flush=True)

    if pending and predictor is None:
        import torch
        device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
        model, ckpt_meta = build_model(cfg, args.checkpoint, device)
        source = set_vocabularies(model, cfg, ckpt_meta, meta)
        print(f'model: {cfg.filename} + {args.checkpoint} on {device}; test vocabulary = the {len(names)} '
              f'classes of the JSON; train vocabulary from {source}', flush=True)
        predictor = make_predictor(model, test_pipeline(cfg))
    if not osp.isfile(cache) or osp.getsize(cache) == 0:  # new cache, or one whose header line was torn
        os.makedirs(osp.dirname(osp.abspath(cache)), exist_ok=True)
        append_cache(cache, header)

    start = time.time()
    for k, info in enumerate(pending, 1):
        item = pseudo_label_image(info, predictor, category_ids, args.iou_threshold)
        append_cache(cache, item)
        done[info['img_id']] = item
        if k % args.log_interval == 0 or k == len(pending):
            rate = k / max(time.time() - start, 1e-9)
            eta = (len(pending) - k) / rate
            part = summarize({d['img_id']: done[d['img_id']] for d in todo_infos if d['img_id'] in done}, names,
                             None)
            print(f'[{k}/{len(pending)}] {rate:.2f} img/s, ETA {eta / 60:.1f} min; deleted segments so far '
                  f'{part["deleted_segments_seen"]}, relabelled {part["relabelled"]}', flush=True)

    results = {d['img_id']: done[d['img_id']] for d in todo_infos}
    merged = merge_pseudo_labels(raw, results, args.panoptic_json)
    atomic_write(args.out, lambda f: f.write(json.dumps(merged).encode('utf-8')))
    summary = dict(panoptic_json=args.panoptic_json, out=args.out, config=args.config, checkpoint=args.checkpoint,
                   iou_threshold=args.iou_threshold, images_in_json=len(infos), images=len(todo_infos),
                   images_predicted=len(pending), images_from_cache=from_cache, cache_lines_dropped=corrupt,
                   reference_json=args.reference_json)
    summary.update(summarize(results, names, reference))
    atomic_write(summary_path(args.out), lambda f: f.write(json.dumps(summary, indent=1).encode('utf-8')))
    complete = len(todo_infos) == len(infos)
    if complete and not args.keep_cache:
        os.remove(cache)
    print(json.dumps({k: v for k, v in summary.items() if k not in ('relabelled_per_class', 'reference_confusions')},
                     indent=1))
    print(f'relabelled per class: {summary["relabelled_per_class"]}')
    print(f'wrote {args.out} and {summary_path(args.out)}'
          + ('' if complete and not args.keep_cache else f'; cache kept: {cache}'), flush=True)
    return summary


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
