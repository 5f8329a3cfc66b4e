"""``NSSSceneDataset``: DreamMask's synthetic ``processed_dataset/`` as a panoptic training set.

Start-up parses the scene JSONs only; images and masks are read per sample by ``LoadNSSAnnotations``
(seed 000's script RLE-encoded every mask up front, which dominates start-up on large sets). Category
names are mapped onto the *training* vocabulary — case/space/underscore-insensitive, any synonym counts —
and names that match nothing become novel classes appended after it, so real and synthetic labels share
one contiguous index space (the DreamMask code indexed its bank with COCO ids but labelled synthetic
objects by name order; that mismatch cannot happen here).
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from PIL import Image

from ovseg.datasets.metainfo import build_metainfo
from ovseg.datasets.sample_seed import SeededSampleMixin
from ovseg.datasets.vocabularies import load_vocabulary
from ovseg.registry import DATASETS, TRANSFORMS

from .processed_format import SceneFormatError, binary_mask, parse_scene, scene_files


def normalize_name(name: str) -> str:
    """'Traffic_Light ' → 'traffic light'."""
    return ' '.join(name.replace('_', ' ').replace('-', ' ').lower().split())


def map_names(names: Sequence[str], base_synonyms: Sequence[Sequence[str]]) -> Dict[str, int]:
    """Contiguous index per category name: a base class when any synonym matches, else a new novel class.

    Novel classes are numbered after the base vocabulary in sorted (deterministic) order."""
    lookup: Dict[str, int] = {}
    for idx, syns in enumerate(base_synonyms):
        for s in syns:
            lookup.setdefault(normalize_name(s), idx)
    mapping: Dict[str, int] = {}
    novel = sorted({normalize_name(n) for n in names} - set(lookup))
    novel_index = {n: len(base_synonyms) + i for i, n in enumerate(novel)}
    for n in names:
        key = normalize_name(n)
        mapping[n] = lookup.get(key, novel_index.get(key))
    return mapping


@DATASETS.register_module()
class NSSSceneDataset(SeededSampleMixin, BaseDataset):
    """Synthetic scenes in seed 000's format; every sample has ``is_synthetic=True``.

    Args:
        data_root: the ``processed_dataset`` folder.
        base_vocabulary: the training vocabulary to map names onto: a vocabulary name/path or a list of
            synonym lists (e.g. the real dataset's ``class_synonyms``). ``None``: classes = scene names.
        base_is_thing: ``is_thing`` of the base vocabulary (default: all things); novel classes are things.
        min_clip_score / max_mask_uncertainty: optional filters; dropped objects are counted and reported.
        resize_masks: resize a mask whose size differs from its image (nearest) instead of raising.
        on_error: ``'raise'`` (default) or ``'skip'``: skip bad scenes at start-up, counted and reported.
        allow_outside_root: accept ``real_image`` / ``mask_path`` outside ``data_root`` (absolute or ``../``);
            refused by default, so a scene file cannot make training read arbitrary files.
    """

    METAINFO: dict = {}

    def __init__(self, data_root: str, base_vocabulary: Union[str, Sequence[Sequence[str]], None] = None,
                 base_is_thing: Optional[Sequence[bool]] = None, min_clip_score: Optional[float] = None,
                 max_mask_uncertainty: Optional[float] = None, resize_masks: bool = False,
                 on_error: str = 'raise', allow_outside_root: bool = False, **kwargs) -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if isinstance(base_vocabulary, str):
            base_vocabulary = load_vocabulary(base_vocabulary)
        self.base_synonyms = [list(s) for s in base_vocabulary] if base_vocabulary is not None else []
        self.base_is_thing = list(base_is_thing) if base_is_thing is not None else [True] * len(self.base_synonyms)
        if len(self.base_is_thing) != len(self.base_synonyms):
            raise ValueError('base_is_thing and base_vocabulary differ in length')
        self.min_clip_score, self.max_mask_uncertainty = min_clip_score, max_mask_uncertainty
        self.resize_masks, self.on_error = resize_masks, on_error
        self.allow_outside_root = allow_outside_root
        self.skipped: Dict[str, int] = {}
        self.name_mapping: Dict[str, int] = {}
        super().__init__(data_root=data_root, **kwargs)

    def _count_skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def load_data_list(self) -> List[dict]:
        files = scene_files(self.data_root)
        if not files:
            raise FileNotFoundError(f'{self.data_root}: no scene_*.json files (expected an NSS processed_dataset)')
        scenes, seen_ids = [], {}
        for path in files:
            scene, problems = parse_scene(path, self.allow_outside_root)
            if scene is not None and scene.scene_id in seen_ids:
                problems.append(dict(file=str(path), field='scene_id',
                                     message=f'duplicate scene id (also in {seen_ids[scene.scene_id]})'))
            if problems:
                if self.on_error == 'raise':
                    raise SceneFormatError(problems)
                self._count_skip('bad scene file')
                continue
            seen_ids[scene.scene_id] = str(path)
            scenes.append(scene)
        names = sorted({o.name for s in scenes for o in s.objects})
        self.name_mapping = map_names(names, self.base_synonyms)
        novel = sorted({normalize_name(n) for n, i in self.name_mapping.items() if i >= len(self.base_synonyms)})
        synonyms = self.base_synonyms + [[n] for n in novel]
        self._metainfo = build_metainfo(synonyms, self.base_is_thing + [True] * len(novel),
                                        list(range(len(synonyms))))
        self._metainfo.update(novel_classes=tuple(novel), name_mapping=dict(self.name_mapping))
        is_thing = self._metainfo['is_thing']
        data_list = []
        for scene in scenes:
            objects = []
            for obj in scene.objects:
                if self.min_clip_score is not None and obj.clip_score < self.min_clip_score:
                    self._count_skip('clip_score below min_clip_score')
                    continue
                if self.max_mask_uncertainty is not None and obj.mask_uncertainty > self.max_mask_uncertainty:
                    self._count_skip('mask_uncertainty above max_mask_uncertainty')
                    continue
                objects.append(dict(mask_path=osp.join(self.data_root, obj.mask_path), index=obj.index,
                                    category_id=self.name_mapping[obj.name], name=obj.name,
                                    isthing=bool(is_thing[self.name_mapping[obj.name]]), field=
                                    f'objects[{scene.objects.index(obj)}].mask_path'))
            data_list.append(dict(img_path=osp.join(self.data_root, scene.real_image), img_id=scene.scene_id,
                                  scene_json=scene.json_path, nss_objects=objects, is_synthetic=True,
                                  resize_masks=self.resize_masks))
        base = sum(1 for i in self.name_mapping.values() if i < len(self.base_synonyms))
        print_log(f'NSSSceneDataset {self.data_root}: {len(data_list)} scenes, {len(names)} names '
                  f'({base} mapped onto the training vocabulary, {len(novel)} novel: {novel}); '
                  f'skipped: {self.skipped or "none"}', logger='current')
        return data_list

    @property
    def metainfo(self) -> dict:
        return dict(self._metainfo)


@TRANSFORMS.register_module()
class LoadNSSAnnotations(BaseTransform):
    """Read a synthetic scene's object masks (lazily, per sample) into ``gt_pan_id`` + ``segments_info``.

    Objects are painted in JSON order, so a later object occludes an earlier one where masks overlap (the
    layout's drawing order). Segment ids are 1..N; 0 is VOID. A mask whose size differs from the image is
    an error naming the scene file and field, unless the dataset was built with ``resize_masks=True``.
    """

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        pan = np.zeros((h, w), np.int64)
        segments = []
        for seg_id, obj in enumerate(results['nss_objects'], start=1):
            try:
                with Image.open(obj['mask_path']) as im:
                    mask = binary_mask(np.asarray(im.convert('L')))
            except OSError as e:
                raise OSError(f"{results['scene_json']}: field '{obj['field']}': cannot read {obj['mask_path']} "
                              f'({e})') from e
            if mask.shape != (h, w):
                if not results.get('resize_masks', False):
                    raise ValueError(f"{results['scene_json']}: field '{obj['field']}': mask {obj['mask_path']} is "
                                     f'{mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h} '
                                     '(set resize_masks=True to resize)')
                mask = np.asarray(Image.fromarray(mask).resize((w, h), Image.NEAREST))
            if not mask.any():
                raise ValueError(f"{results['scene_json']}: field '{obj['field']}': empty mask {obj['mask_path']}")
            pan[mask] = seg_id
            segments.append(dict(id=seg_id, category_id=obj['category_id'], iscrowd=0,
                                 isthing=obj.get('isthing', True)))
        areas = np.bincount(pan.ravel(), minlength=len(segments) + 1)
        for seg in segments:
            seg['area'] = int(areas[seg['id']])
        results['gt_pan_id'] = pan
        results['segments_info'] = [s for s in segments if s['area'] > 0]  # fully occluded objects vanish
        lut = np.full(len(segments) + 1, 255, np.int64)
        for seg in segments:
            lut[seg['id']] = seg['category_id']
        results['gt_seg_map'] = lut[pan]
        results['is_synthetic'] = True
        return results
