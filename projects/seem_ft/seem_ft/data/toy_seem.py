"""ToyScenes with grounding sentences: the CPU toy data of SEEM fine-tuning, generated once under ``data_root``.

The sentences are ToyScenes referring's (:mod:`ovseg.datasets.toy_referring`: its unique expressions per segment,
built by ``describe_segments``, same seed rules), re-keyed from its COCO-instances annotations to the panoptic
segment ids and written as grounding JSONs (:mod:`.grounding`). The expressions, their ``sent_id`` and the images are
therefore exactly those of :class:`ovseg.datasets.ToyReferringDataset`: a SEEM and a Sa2VA toy model are scored on
the same expressions by the same ``ReferringSegMetric``.

Layout added under ``<data_root>`` (ToyScenes + ``referring/`` are generated first when absent)::

    seem/grounding_{train,val}.json   grounding JSON per split (image ids = the panoptic JSON's)
    seem/meta.json                    parameters, source metas and counts (written last: marks a complete copy)
    .seem.lock                        serialises concurrent generators (DDP ranks)

Datasets: :class:`ToySEEMDataset` (:class:`PanopticGroundingDataset` on a split) and
:class:`ToySEEMReferringDataset` (:class:`GroundingReferringDataset`, evaluation), both generating on first use.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mmengine.logging import print_log

from ovseg.datasets.referring import decode_rle, load_refs_file
from ovseg.datasets.toy_referring import IMAGE_ID_STRIDE, REFERRING_DIR, REFS_FILE, ensure_toy_referring
from ovseg.datasets.toy_scenes import SPLIT_CODES, _file_lock, ensure_toy_scenes
from ovseg.registry import DATASETS
from ovseg.structures.panoptic_format import read_panoptic_png
from ovseg.utils.atomic_io import atomic_write_bytes, build_dir_atomically

from .datasets import GroundingReferringDataset, PanopticGroundingDataset
from .grounding import write_grounding_json

__all__ = ['SEEM_DIR', 'generate_toy_seem', 'ensure_toy_seem', 'toy_seem_paths', 'ToySEEMDataset',
           'ToySEEMReferringDataset']

TOY_SEEM_VERSION = 1
SEEM_DIR = 'seem'


def toy_seem_paths(split: str) -> dict[str, str]:
    """Dataset arguments (relative to the ToyScenes ``data_root``) of a split's panoptic + grounding files."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    return dict(ann_file=f'panoptic_{split}.json', grounding_file=f'{SEEM_DIR}/grounding_{split}.json',
                data_prefix=dict(img=f'images/{split}', seg=f'panoptic_{split}', sem_seg=f'semantic_{split}'))


def generate_toy_seem(toy_root: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write the grounding JSONs of a ToyScenes copy that has ``referring/``; returns the meta (also written)."""
    root = Path(toy_root)
    out = Path(out_dir)
    ref_dir = root / REFERRING_DIR
    refs = load_refs_file(ref_dir / REFS_FILE)
    with open(ref_dir / 'instances.json', encoding='utf-8') as f:
        anns = {a['id']: a for a in json.load(f)['annotations']}
    with open(ref_dir / 'meta.json', encoding='utf-8') as f:
        ref_meta = json.load(f)
    with open(root / 'meta.json', encoding='utf-8') as f:
        scenes_meta = json.load(f)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for split, code in SPLIT_CODES.items():
        split_refs = [r for r in refs if r['split'] == split]
        pan_file = root / f'panoptic_{split}.json'
        if not split_refs or not pan_file.is_file():
            continue
        with open(pan_file, encoding='utf-8') as f:
            pan_json = json.load(f)
        images = {img['id']: img for img in pan_json['images']}
        pan_anns = {a['image_id']: a for a in pan_json['annotations']}
        used_images, out_anns, pngs = {}, [], {}
        for ref in split_refs:
            image_id = int(ref['image_id']) - code * IMAGE_ID_STRIDE
            pan_ann = pan_anns[image_id]
            if image_id not in pngs:
                pngs[image_id] = read_panoptic_png(root / f'panoptic_{split}' / pan_ann['file_name'])
            pan = pngs[image_id]
            mask = decode_rle(anns[ref['ann_id']]['segmentation'])
            ids = set(pan[mask].tolist())
            seg_id = ids.pop() if len(ids) == 1 else None
            if seg_id is None or int((pan == seg_id).sum()) != int(mask.sum()):
                raise ValueError(f"{ref_dir / REFS_FILE}: ref {ref['ref_id']} does not match one segment of "
                                 f"{pan_ann['file_name']} ({split}); regenerate {ref_dir}")
            segment = next(s for s in pan_ann['segments_info'] if int(s['id']) == seg_id)
            used_images[image_id] = images[image_id]
            out_anns.append(dict(id=int(ref['ref_id']), image_id=image_id, segment_id=int(seg_id),
                                 category_id=int(segment['category_id']),
                                 sentences=[dict(sent_id=s['sent_id'], raw=s['raw'], sent=s['sent'])
                                            for s in ref['sentences']]))
        write_grounding_json(out / f'grounding_{split}.json', [used_images[k] for k in sorted(used_images)],
                             out_anns, pan_json['categories'])
        counts[split] = dict(images=len(used_images), segments=len(out_anns),
                             sentences=sum(len(a['sentences']) for a in out_anns))
    meta = dict(toy_seem_version=TOY_SEEM_VERSION, referring=ref_meta['params'], toy_scenes=scenes_meta,
                counts=counts)
    atomic_write_bytes(out / 'meta.json', json.dumps(meta, sort_keys=True, indent=1).encode('utf-8'))
    return meta


def _check_meta(folder: Path, expected: dict) -> dict:
    with open(folder / 'meta.json', encoding='utf-8') as f:
        meta = json.load(f)
    diff = [k for k in expected if meta.get(k) != expected[k]]
    if diff:
        raise ValueError(f'{folder} holds toy SEEM groundings generated differently ({", ".join(diff)} differ: on '
                         f'disk {[meta.get(k) for k in diff]!r} vs requested {[expected[k] for k in diff]!r}); '
                         'delete it to regenerate')
    return meta


def ensure_toy_seem(data_root: str | os.PathLike = 'data/toy_scenes', generate: bool | dict = True,
                    referring: dict | None = None) -> dict[str, Any]:
    """Make ``<data_root>/seem`` (and ToyScenes and its referring expressions) unless complete; returns its meta.

    Args:
        data_root: the ToyScenes folder.
        generate: ``True`` / ``dict(...)`` of ToyScenes parameters to create the scenes when absent; ``False``
            requires existing scenes.
        referring: ToyScenes referring parameters (``ovseg.datasets.toy_referring.REFERRING_DEFAULTS``).

    Safe with several processes: an exclusive lock (``<data_root>/.seem.lock``) serialises them, files are written
    to a temporary sibling and renamed; a copy made from other scenes or expressions raises instead of being reused.
    """
    root = Path(data_root)
    if generate is not False:
        ensure_toy_scenes(root, **(generate if isinstance(generate, dict) else {}))
    elif not (root / 'meta.json').is_file():
        raise FileNotFoundError(f'{root}: no ToyScenes copy (meta.json missing) and generate=False')
    ref_meta = ensure_toy_referring(root, **(referring or {}))
    with open(root / 'meta.json', encoding='utf-8') as f:
        expected = dict(toy_seem_version=TOY_SEEM_VERSION, referring=ref_meta['params'], toy_scenes=json.load(f))
    folder = root / SEEM_DIR
    if (folder / 'meta.json').is_file():
        return _check_meta(folder, expected)
    with _file_lock(root / f'.{SEEM_DIR}.lock'):
        if (folder / 'meta.json').is_file():
            return _check_meta(folder, expected)
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f'{folder} exists but is not complete (no meta.json); delete it to regenerate')
        meta = build_dir_atomically(folder, lambda tmp: generate_toy_seem(root, tmp))
    print_log(f'toy SEEM groundings {folder}: {meta["counts"]}', logger='current')
    return meta


@DATASETS.register_module()
class ToySEEMDataset(PanopticGroundingDataset):
    """A ToyScenes split with its grounding sentences (:class:`PanopticGroundingDataset`), generated on first use.

    Args:
        data_root: the ToyScenes folder (default ``data/toy_scenes``).
        split: ``'train'`` or ``'val'``.
        generate / referring: as :func:`ensure_toy_seem`.
        Other args as :class:`PanopticGroundingDataset`; the vocabulary defaults to the split's ToyScenes synonyms.
    """

    def __init__(self, data_root: str = 'data/toy_scenes', split: str = 'train', generate: bool | dict = True,
                 referring: dict | None = None, **kwargs: Any) -> None:
        paths = toy_seem_paths(split)
        ensure_toy_seem(data_root, generate=generate, referring=referring)
        for key, value in paths.items():
            kwargs.setdefault(key, value)
        kwargs.setdefault('vocabulary', os.path.join(data_root, f'toy_scenes_{split}.txt'))
        self.split = split
        super().__init__(data_root=data_root, **kwargs)


@DATASETS.register_module()
class ToySEEMReferringDataset(GroundingReferringDataset):
    """A ToyScenes split's grounding sentences as referring samples (:class:`GroundingReferringDataset`).

    Same expressions, ``sent_id`` and masks as :class:`ovseg.datasets.ToyReferringDataset` of the split. Args as
    :class:`ToySEEMDataset` plus those of :class:`GroundingReferringDataset` (``group``, ``text``, ``test_mode``...).
    """

    def __init__(self, data_root: str = 'data/toy_scenes', split: str = 'val', generate: bool | dict = True,
                 referring: dict | None = None, **kwargs: Any) -> None:
        paths = toy_seem_paths(split)
        ensure_toy_seem(data_root, generate=generate, referring=referring)
        for key, value in paths.items():
            kwargs.setdefault(key, value)
        kwargs['data_prefix'] = {k: v for k, v in kwargs['data_prefix'].items() if k != 'sem_seg'}
        kwargs.setdefault('vocabulary', os.path.join(data_root, f'toy_scenes_{split}.txt'))
        self.split = split
        super().__init__(data_root=data_root, **kwargs)
