"""``NSSSceneDataset``: DreamMask's synthetic ``processed_dataset/`` as a panoptic training set.

Start-up parses the scene JSONs only; images and masks are read per sample by ``LoadNSSAnnotations``
(seed 000's script RLE-encoded every mask up front, which dominates start-up on large sets). Category
names are mapped onto the *training* vocabulary with ``ovseg.vocabulary.map_names`` (compared after
``normalize_name``, any synonym counts); names that match nothing become novel classes appended after it,
so real and synthetic labels share one contiguous index space (the DreamMask code indexed its bank with COCO ids
but labelled synthetic objects by name order; that mismatch cannot happen here).
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from PIL import Image

from ovseg.datasets.metainfo import build_metainfo, default_ignore_index
from ovseg.datasets.sample_seed import SeededSampleMixin
from ovseg.registry import DATASETS, TRANSFORMS
from ovseg.vocabulary import load_vocabulary, map_names, normalize_name

from .nss.layout.paint_order import check_paint_order, paint_order
from .processed_format import SceneFormatError, binary_mask, parse_scene, scene_files


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

    def __init__(self, data_root: str, base_vocabulary: str | Sequence[Sequence[str]] | None = None,
                 base_is_thing: Sequence[bool] | None = None, min_clip_score: float | None = None,
                 max_mask_uncertainty: float | None = None, resize_masks: bool = False,
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
        self.skipped: dict[str, int] = {}
        self.name_mapping: dict[str, int] = {}
        super().__init__(data_root=data_root, **kwargs)

    def _count_skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def load_data_list(self) -> list[dict]:
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
        # > 255 classes (COCO + many novel names) make 255 a class: the semantic ignore value moves to 65535
        self._metainfo = build_metainfo(synonyms, self.base_is_thing + [True] * len(novel),
                                        list(range(len(synonyms))),
                                        ignore_index=default_ignore_index(len(synonyms)))
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
                                  resize_masks=self.resize_masks, ignore_index=self._metainfo['ignore_index']))
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

    SAM masks of overlapping boxes overlap; the panoptic map needs one owner per pixel, so the masks are
    painted back to front: ``paint_order='area'`` (default) paints larger masks first, so a large background
    object (a lawn, a table) never erases the smaller objects on it, whatever their order in the JSON (LLM
    layouts list objects in any order); ``'layout'`` paints in JSON order (later occludes earlier), for layouts
    that are already back to front. Segment ids are 1..N in JSON order; 0 is VOID. A mask whose size differs
    from the image is an error naming the scene file and field, unless the dataset was built with
    ``resize_masks=True``. Objects that end up with no visible pixel are dropped.
    """

    def __init__(self, paint_order: str = 'area') -> None:
        self.paint_order = check_paint_order(paint_order)

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        pan = np.zeros((h, w), np.int64)
        segments = []
        masks = []
        for obj in results['nss_objects']:
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
            masks.append(mask)
            segments.append(dict(id=len(segments) + 1, category_id=obj['category_id'], iscrowd=0,
                                 isthing=obj.get('isthing', True)))
        for i in paint_order([int(m.sum()) for m in masks], self.paint_order):
            pan[masks[i]] = segments[i]['id']
        areas = np.bincount(pan.ravel(), minlength=len(segments) + 1)
        for seg in segments:
            seg['area'] = int(areas[seg['id']])
        results['gt_pan_id'] = pan
        results['segments_info'] = [s for s in segments if s['area'] > 0]  # fully occluded objects vanish
        lut = np.full(len(segments) + 1, results.get('ignore_index', 255), np.int64)
        for seg in segments:
            lut[seg['id']] = seg['category_id']
        results['gt_seg_map'] = lut[pan]
        results['is_synthetic'] = True
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(paint_order={self.paint_order!r})'
