"""The ``processed_dataset/`` format of DreamMask's NSS pipeline (seed 000), parsed and validated.

A scene is ``scene_XXXXX.json``::

    {"scene_id": "scene_00000", "real_image": "images/real_00000.png",
     "canvas_width": 1024, "canvas_height": 1024,
     "objects": [{"index": 0, "name": "car", "box": {"x": 120, "y": 430, "w": 260, "h": 140},
                  "mask_path": "masks/scene_00000_obj_00.png", "clip_score": 0.35, "mask_uncertainty": 0.08}]}

Validation returns problems as ``{'file', 'field', 'message'}`` records instead of raising, so a validator
can report every problem of a dataset at once and a dataset can choose between raising and counting skips.
Paths (``real_image``, ``mask_path``) are relative to the dataset root and may not leave it (``../``, an
absolute path) unless ``allow_outside_root``: a scene file must not make a reader open arbitrary files.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SCENE_FIELDS = {'scene_id': str, 'real_image': str, 'canvas_width': int, 'canvas_height': int, 'objects': list}
OBJECT_FIELDS = {'index': int, 'name': str, 'box': dict, 'mask_path': str, 'clip_score': (int, float),
                 'mask_uncertainty': (int, float)}
BOX_FIELDS = ('x', 'y', 'w', 'h')


@dataclass
class SceneObject:
    index: int
    name: str
    box: tuple[float, float, float, float]  # x, y, w, h in canvas pixels
    mask_path: str
    clip_score: float
    mask_uncertainty: float


@dataclass
class Scene:
    json_path: str
    scene_id: str
    real_image: str
    canvas_width: int
    canvas_height: int
    objects: list[SceneObject] = field(default_factory=list)


class SceneFormatError(ValueError):
    """A scene file breaks the format; the message names the file and the field."""

    def __init__(self, problems: list[dict]) -> None:
        self.problems = problems
        first = problems[0]
        more = f' (+{len(problems) - 1} more)' if len(problems) > 1 else ''
        super().__init__(f"{first['file']}: field '{first['field']}': {first['message']}{more}")


def _problem(file: str, fld: str, message: str) -> dict:
    return {'file': file, 'field': fld, 'message': message}


def _typed(value, typ) -> bool:
    if typ is int or typ == (int, float):
        return isinstance(value, typ) and not isinstance(value, bool)
    return isinstance(value, typ)


def path_problem(rel: str) -> str | None:
    """Why ``rel`` (a path from a scene file) would leave the dataset root, or None."""
    if osp.isabs(rel) or rel.startswith('~'):
        return f'{rel!r} is absolute; paths are relative to the dataset root'
    if osp.normpath(rel).split(os.sep)[0] == os.pardir:
        return f'{rel!r} leaves the dataset root'
    return None


def parse_scene(json_path: str | Path, allow_outside_root: bool = False) -> tuple[Scene | None, list[dict]]:
    """Parse and check a scene's JSON structure (no file access beyond the JSON) → (scene or None, problems)."""
    path = str(json_path)
    try:
        with open(path, 'r', encoding='utf-8') as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        return None, [_problem(path, '<json>', f'malformed JSON: {e}')]
    except UnicodeDecodeError as e:
        return None, [_problem(path, '<file>', f'not UTF-8 text (byte {e.start}: {e.reason})')]
    except RecursionError:
        return None, [_problem(path, '<json>', 'JSON nested too deeply to parse (a scene is 3 levels deep)')]
    except OSError as e:
        return None, [_problem(path, '<file>', f'cannot read: {e}')]
    if not isinstance(raw, dict):
        return None, [_problem(path, '<json>', f'expected an object, got {type(raw).__name__}')]
    problems = []
    for key, typ in SCENE_FIELDS.items():
        if key not in raw:
            problems.append(_problem(path, key, 'missing required field'))
        elif not _typed(raw[key], typ):
            problems.append(_problem(path, key, f'expected {getattr(typ, "__name__", "number")}, '
                                                f'got {type(raw[key]).__name__}'))
    if problems:
        return None, problems
    if raw['canvas_width'] <= 0 or raw['canvas_height'] <= 0:
        problems.append(_problem(path, 'canvas_width/canvas_height', 'canvas size must be positive'))
    if not allow_outside_root and path_problem(raw['real_image']):
        problems.append(_problem(path, 'real_image', path_problem(raw['real_image'])))
    objects = []
    seen_index = set()
    for k, obj in enumerate(raw['objects']):
        where = f'objects[{k}]'
        if not isinstance(obj, dict):
            problems.append(_problem(path, where, 'expected an object'))
            continue
        bad = False
        for key, typ in OBJECT_FIELDS.items():
            if key not in obj:
                problems.append(_problem(path, f'{where}.{key}', 'missing required field'))
                bad = True
            elif not _typed(obj[key], typ):
                problems.append(_problem(path, f'{where}.{key}', f'wrong type {type(obj[key]).__name__}'))
                bad = True
        if bad:
            continue
        box = obj['box']
        if any(b not in box or not _typed(box[b], (int, float)) for b in BOX_FIELDS):
            problems.append(_problem(path, f'{where}.box', 'needs numeric x, y, w, h'))
            continue
        x, y, w, h = (float(box[b]) for b in BOX_FIELDS)
        if w <= 0 or h <= 0:
            problems.append(_problem(path, f'{where}.box', f'zero or negative size w={w} h={h}'))
        if x < 0 or y < 0 or x + w > raw['canvas_width'] or y + h > raw['canvas_height']:
            problems.append(_problem(path, f'{where}.box', f'box ({x}, {y}, {w}, {h}) outside the canvas '
                                                           f"{raw['canvas_width']}x{raw['canvas_height']}"))
        if not 0.0 <= float(obj['mask_uncertainty']) <= 1.0:
            problems.append(_problem(path, f'{where}.mask_uncertainty',
                                     f"{obj['mask_uncertainty']} outside [0, 1]"))
        if not -1.0 <= float(obj['clip_score']) <= 1.0:
            problems.append(_problem(path, f'{where}.clip_score', f"{obj['clip_score']} outside [-1, 1] (a cosine)"))
        if not obj['name'].strip():
            problems.append(_problem(path, f'{where}.name', 'empty category name'))
        if not allow_outside_root and path_problem(obj['mask_path']):
            problems.append(_problem(path, f'{where}.mask_path', path_problem(obj['mask_path'])))
        if obj['index'] in seen_index:
            problems.append(_problem(path, f'{where}.index', f"duplicate object index {obj['index']}"))
        seen_index.add(obj['index'])
        objects.append(SceneObject(obj['index'], obj['name'], (x, y, w, h), obj['mask_path'],
                                   float(obj['clip_score']), float(obj['mask_uncertainty'])))
    scene = Scene(path, raw['scene_id'], raw['real_image'], int(raw['canvas_width']), int(raw['canvas_height']),
                  objects)
    return scene, problems


def binary_mask(arr: np.ndarray) -> np.ndarray:
    """Foreground of a mask PNG, read the same way by the validator and the dataset: 0/1 masks are taken
    as they are, 8-bit masks (0/255, possibly anti-aliased) are thresholded at 128."""
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr > 127 if arr.max(initial=0) > 1 else arr > 0


# Image files that cannot be checked: missing, corrupt, or a header claiming more pixels than PIL's
# decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``; the warning above it is turned into an error here).
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning,
                 MemoryError)


def _open_image(path: Path) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter('error', Image.DecompressionBombWarning)
        return Image.open(path)


def _image_size(path: Path) -> tuple[int, int]:
    with _open_image(path) as im:
        im.verify()  # catches truncated/corrupt files without decoding all pixels
    with _open_image(path) as im:
        return im.size  # (w, h)


def check_scene_files(scene: Scene, root: str | Path, check_masks_nonempty: bool = True,
                      allow_outside_root: bool = False) -> list[dict]:
    """Image and masks exist, open, have the image's size, and masks are non-empty.

    Paths that leave the root are not opened (``parse_scene`` reports them) unless ``allow_outside_root``.
    """
    root = Path(root)
    problems = []
    if not allow_outside_root and path_problem(scene.real_image):
        return problems
    img_path = root / scene.real_image
    try:
        img_w, img_h = _image_size(img_path)
    except _IMAGE_ERRORS as e:
        return [_problem(scene.json_path, 'real_image', f'{img_path}: missing or unreadable ({e})')]
    for k, obj in enumerate(scene.objects):
        where = f'objects[{k}].mask_path'
        if not allow_outside_root and path_problem(obj.mask_path):
            continue
        mpath = root / obj.mask_path
        try:
            with _open_image(mpath) as im:
                mask = np.asarray(im.convert('L'))
        except _IMAGE_ERRORS as e:
            problems.append(_problem(scene.json_path, where, f'{mpath}: missing or unreadable ({e})'))
            continue
        if mask.shape != (img_h, img_w):
            problems.append(_problem(scene.json_path, where, f'{mpath}: mask is {mask.shape[1]}x{mask.shape[0]}, '
                                                             f'image is {img_w}x{img_h}'))
        elif check_masks_nonempty and not binary_mask(mask).any():
            problems.append(_problem(scene.json_path, where, f'{mpath}: empty mask'))
    return problems


def scene_files(root: str | Path) -> list[Path]:
    """Every ``scene_*.json`` directly under ``root``, sorted."""
    return sorted(Path(root).glob('scene_*.json'))


def validate_dataset(root: str | Path, allow_outside_root: bool = False) -> dict:
    """Check every scene → ``{'scenes', 'objects', 'categories': {name: count}, 'errors': [...]}``."""
    root = Path(root)
    report: dict = {'scenes': 0, 'objects': 0, 'categories': {}, 'errors': []}
    files = scene_files(root)
    if not files:
        report['errors'].append(_problem(str(root), '<dataset>', 'no scene_*.json files found'))
        return report
    ids: dict[str, str] = {}
    for path in files:
        scene, problems = parse_scene(path, allow_outside_root)
        report['scenes'] += 1
        if scene is not None:
            if scene.scene_id in ids:
                problems.append(_problem(str(path), 'scene_id',
                                         f'duplicate scene id {scene.scene_id!r} (also in {ids[scene.scene_id]})'))
            ids.setdefault(scene.scene_id, str(path))
            problems += check_scene_files(scene, root, allow_outside_root=allow_outside_root)
            report['objects'] += len(scene.objects)
            for obj in scene.objects:
                report['categories'][obj.name] = report['categories'].get(obj.name, 0) + 1
        report['errors'].extend(problems)
    return report
