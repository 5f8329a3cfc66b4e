"""Write one scene of ``processed_dataset/`` in DreamMask's format (seed 000)::

    processed_dataset/images/real_XXXXX.png
    processed_dataset/masks/scene_XXXXX_obj_YY.png      (L mode, 0 / 255; YY = the layout object index)
    processed_dataset/scene_XXXXX.json                  (written last: its presence marks a complete scene)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_save_png, atomic_write_bytes, atomic_write_json


def scene_record(layout, real_image: str, objects: list[dict]) -> dict:
    """The JSON of seed 000, exactly these keys in this order."""
    return {
        'scene_id': layout.scene_id,
        'real_image': real_image,
        'canvas_width': int(layout.canvas_width),
        'canvas_height': int(layout.canvas_height),
        'objects': objects,
    }


def write_processed_scene(root, layout, image_png: bytes, kept: list[tuple[int, np.ndarray, float,
                                                                           float]]) -> dict:
    """``kept``: ``(layout object index, mask H×W bool, clip_score, mask_uncertainty)``.

    Returns the scene record."""
    root = Path(root)
    idx = layout.scene_id.split('_')[-1]
    real = f'images/real_{idx}.png'
    atomic_write_bytes(root / real, image_png)
    objects = []
    for i, mask, clip_score, unc in kept:
        o = layout.objects[i]
        mpath = f'masks/{layout.scene_id}_obj_{i:02d}.png'
        atomic_save_png(root / mpath, (np.asarray(mask, bool).astype(np.uint8) * 255))
        objects.append({
            'index': int(i),
            'name': o.name,
            'box': o.box(),
            'mask_path': mpath,
            'clip_score': round(float(clip_score), 6),
            'mask_uncertainty': round(float(unc), 6)
        })
    rec = scene_record(layout, real, objects)
    atomic_write_json(root / f'{layout.scene_id}.json', rec)
    return rec
