"""Tiny fixtures in the real on-disk formats of SA-V, SA-1B and Open Images, written on the fly (region_data)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util

H, W, N_FRAMES, STRIDE = 48, 64, 24, 4


def rle(mask: np.ndarray) -> dict:
    """SA-V / SA-1B style compressed RLE (str counts) of a bool mask."""
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in r['size']], 'counts': r['counts'].decode('ascii')}


def box(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def raw_frame(i: int) -> np.ndarray:
    """RGB frame i as written: a per-frame brightness plus a smooth gradient (survives mp4v compression)."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([(8 * i + xx) % 256, (200 - 7 * i + yy) % 256, np.full_like(xx, 40 + 9 * i)], -1)
    return img.astype(np.uint8)


def write_mp4(path: Path, n: int = N_FRAMES) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 24, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(cv2.cvtColor(raw_frame(i), cv2.COLOR_RGB2BGR))
    writer.release()


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video decoded sequentially (RGB): what the fixture's mp4 really holds."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def sav_masks(n_ann: int = N_FRAMES // STRIDE) -> list[list[np.ndarray]]:
    """masks[k][o] of annotated frame k, object o.

    object 0: a box moving right, visible in every annotated frame; object 1: visible in annotated frames 1 and 4
    only; object 2: empty everywhere; object 3: visible in annotated frame 2 only.
    """
    empty = np.zeros((H, W), bool)
    out = []
    for k in range(n_ann):
        o0 = box(H, W, 10, 2 + 6 * k, 22, 14 + 6 * k)
        o1 = box(H, W, 30, 5 + k, 40 + k, 20 + 2 * k) if k in (1, 4) else empty
        o3 = box(H, W, 2, 40, 8, 60) if k == 2 else empty
        out.append([o0, o1, empty, o3])
    return out


def write_sav(root: Path, video_id: str = 'sav_000001', video: bool = True) -> dict:
    """``<root>/<video_id>.mp4`` (24 frames 64x48, mp4v) + ``<root>/<video_id>_manual.json`` (6 annotated frames)."""
    root.mkdir(parents=True, exist_ok=True)
    masks = sav_masks()
    doc = dict(video_id=video_id, video_duration=1.0, video_frame_count=N_FRAMES, video_height=H, video_width=W,
               video_resolution=H * W, video_environment='Indoor', video_split='train',
               masklet=[[rle(m) for m in frame] for frame in masks], masklet_id=[0, 1, 2, 3],
               masklet_type=['manual'] * 4, masklet_num=4)
    (root / f'{video_id}_manual.json').write_text(json.dumps(doc))
    if video:
        write_mp4(root / f'{video_id}.mp4')
    return dict(masks=masks, doc=doc)


# ---------------------------------------------------------------------------------------------------- SA-1B
SA1B_H, SA1B_W = 40, 56


def sa1b_anns() -> dict[int, dict]:
    """ann id → (mask, predicted_iou, stability_score) of image sa_1."""
    return {
        11: dict(mask=box(SA1B_H, SA1B_W, 5, 5, 15, 15), predicted_iou=0.9, stability_score=0.95),  # 100 px
        12: dict(mask=box(SA1B_H, SA1B_W, 10, 10, 40, 30), predicted_iou=0.7, stability_score=0.97),  # 600 px
        13: dict(mask=box(SA1B_H, SA1B_W, 0, 50, 2, 52), predicted_iou=0.95, stability_score=0.8),  # 4 px
        14: dict(mask=np.zeros((SA1B_H, SA1B_W), bool), predicted_iou=0.9, stability_score=0.9),  # empty
    }


def sa1b_image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (SA1B_H, SA1B_W, 3), dtype=np.uint8), (5, 5), 0)


def write_sa1b(root: Path, with_empty: bool = True) -> None:
    """``sa_000000/sa_1.jpg + sa_1.json`` (anns 11-14) and ``sa_000000/sa_2.jpg + sa_2.json`` (one 4 px mask)."""
    folder = root / 'sa_000000'
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, anns in ((1, sa1b_anns()), (2, {21: dict(mask=box(SA1B_H, SA1B_W, 0, 0, 2, 2), predicted_iou=0.99,
                                                         stability_score=0.99)})):
        if not with_empty:
            anns.pop(14, None)
        cv2.imwrite(str(folder / f'sa_{image_id}.jpg'), cv2.cvtColor(sa1b_image(image_id), cv2.COLOR_RGB2BGR))
        doc = dict(image=dict(image_id=image_id, width=SA1B_W, height=SA1B_H, file_name=f'sa_{image_id}.jpg'),
                   annotations=[dict(id=i, segmentation=rle(a['mask']), bbox=[0, 0, 1, 1], area=int(a['mask'].sum()),
                                     predicted_iou=a['predicted_iou'], stability_score=a['stability_score'],
                                     crop_box=[0, 0, SA1B_W, SA1B_H], point_coords=[[1.0, 1.0]])
                                for i, a in anns.items()])
        (folder / f'sa_{image_id}.json').write_text(json.dumps(doc))


# ---------------------------------------------------------------------------------------------------- Open Images
OI_HEADER = ['MaskPath', 'ImageID', 'LabelName', 'BoxID', 'BoxXMin', 'BoxXMax', 'BoxYMin', 'BoxYMax', 'PredictedIoU',
             'Clicks']


def oi_gray(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    """A mask PNG's grey levels: 255 inside, 123 (foreground by a hair) on one row, 122 (background) on another."""
    g = np.zeros((h, w), np.uint8)
    g[y0:y1, x0:x1] = 255
    g[y0, x0:x1] = 123
    g[min(y1, h - 1), x0:x1] = 122
    return g


def write_open_images(root: Path) -> dict:
    """CSV rows: 1 flat mask (image size), 2 fiftyone-layout mask at half resolution, 3 low PredictedIoU,
    4 empty mask, 5 missing mask PNG. Returns the expected masks of rows 1 and 2 and the images."""
    (root / 'images').mkdir(parents=True)
    (root / 'masks' / 'F').mkdir(parents=True)
    ids = {'a': '0a1b2c3d4e5f6a7b', 'f': 'f00dcafe12345678'}
    imgs = {'a': sa1b_image(7)[:, :50], 'f': sa1b_image(8)}
    for k, image_id in ids.items():
        cv2.imwrite(str(root / 'images' / f'{image_id}.jpg'), cv2.cvtColor(imgs[k], cv2.COLOR_RGB2BGR))
    ga = oi_gray(40, 50, 4, 6, 20, 30)
    cv2.imwrite(str(root / 'masks' / f"{ids['a']}_m01yrx_b1.png"), ga)
    gf = oi_gray(20, 28, 3, 3, 12, 20)  # image is 40x56: twice this
    cv2.imwrite(str(root / 'masks' / 'F' / f"{ids['f']}_m0bt9lr_b2.png"), gf)
    cv2.imwrite(str(root / 'masks' / f"{ids['a']}_m0bt9lr_b3.png"), ga)
    cv2.imwrite(str(root / 'masks' / f"{ids['a']}_m01yrx_b4.png"), np.zeros((40, 50), np.uint8))
    rows = [
        [f"{ids['a']}_m01yrx_b1.png", ids['a'], '/m/01yrx', 'b1', 0.1, 0.6, 0.1, 0.5, 0.9, '0.2 0.3 1'],
        [f"{ids['f']}_m0bt9lr_b2.png", ids['f'], '/m/0bt9lr', 'b2', 0.1, 0.7, 0.1, 0.6, 0.8, ''],
        [f"{ids['a']}_m0bt9lr_b3.png", ids['a'], '/m/0bt9lr', 'b3', 0.1, 0.6, 0.1, 0.5, 0.3, ''],
        [f"{ids['a']}_m01yrx_b4.png", ids['a'], '/m/01yrx', 'b4', 0.1, 0.6, 0.1, 0.5, 0.9, ''],
        [f"{ids['a']}_m01yrx_b5.png", ids['a'], '/m/01yrx', 'b5', 0.1, 0.6, 0.1, 0.5, 0.9, ''],
    ]
    with open(root / 'seg.csv', 'w', newline='') as f:
        csv.writer(f).writerows([OI_HEADER, *rows])
    (root / 'classes.csv').write_text('LabelName,DisplayName\n/m/01yrx,Cat\n/m/0bt9lr,Dog\n')
    mask_f = cv2.resize((gf > 122).astype(np.uint8), (56, 40), interpolation=cv2.INTER_NEAREST).astype(bool)
    return dict(ids=ids, imgs=imgs, masks={1: ga > 122, 2: mask_f})
