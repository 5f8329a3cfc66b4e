"""Colour-coded masks + a class table → SEEM's training files: panoptic PNG + JSON, semantic PNGs, grounding JSON.

The recipe of the SEEM fine-tuning notes for users' own data (assign a colour and thing/stuff to each class, then
let panoptic tooling number the segments), without COCO anywhere: the classes and their number come from the table.

    python tools/dataset_converters/colour_masks_to_seem.py --images data/mine/images --masks data/mine/masks \\
        --classes data/mine/classes.csv --out data/mine --split train \\
        [--sentences data/mine/sentences.csv] [--class-name-sentences] [--instance-masks data/mine/instances] \\
        [--void-color "0 0 0"] [--connectivity 8]

Inputs:
    --images DIR     images; any of .jpg/.jpeg/.png/.bmp/.tif/.tiff/.webp, one per file stem.
    --masks DIR      ``<stem>.png`` per image: RGB, one colour per class (palette / RGBA PNGs are read as RGB);
                     the void colour (default black) marks unlabelled pixels.
    --classes CSV    header ``color,name,isthing``; ``color`` as ``r g b`` or ``#rrggbb`` (each colour once, each
                     name once), ``isthing`` 1/0, true/false, yes/no or thing/stuff. Category ids are 1..K in table
                     order; the contiguous semantic label of row k is k-1.
    --instance-masks DIR  optional ``<stem>.png`` instance ids (8/16-bit single channel, or RGB read as
                     ``R + 256 G + 256² B``): each (thing colour, instance id) is one instance; id 0 on a thing
                     pixel is an error. Without it every 4/8-connected component (``--connectivity``) of a thing
                     colour is one instance. Stuff colours are one segment per image (disconnected parts too).
    --sentences CSV  optional, header ``image,color_or_segment,sentence``: ``image`` is the stem or file name;
                     ``color_or_segment`` is a colour (a stuff class, or a thing with exactly one instance in the
                     image), ``<colour>:<k>`` (the k-th instance of that thing colour: the instance id of
                     ``--instance-masks``, else the k-th connected component in raster order of its first pixel,
                     from 1) or a segment id of the output PNG. Several rows for one segment give it several
                     sentences; segments without a row get no grounding, or their class name as the sentence with
                     ``--class-name-sentences``.

Outputs under ``OUT``:
    panoptic_<split>/<stem>.png      panoptic ids as RGB (``R + 256 G + 256² B``): ``category_id * 1000 + k``
                                     (k = 1.. per thing instance, 0 for stuff), unique per image; 0 = void
    panoptic_<split>.json            COCO panoptic: images (id 1..N in stem order), annotations with segments_info
                                     (id, category_id, iscrowd 0, bbox [x, y, w, h], area), categories (id, name,
                                     isthing, color)
    panoptic_semseg_<split>/<stem>.png  uint8 contiguous class 0..K-1, 255 = void (Mask2Former's
                                     ``prepare_coco_semantic_annos_from_panoptic_annos`` convention, SEEM's evaluator)
    grounding_<split>.json           sentences per segment (schema: ``projects/seem_ft/seem_ft/data/grounding.py``)

Errors name the file, the colour and the segment: an unknown colour (with its pixel count), a colour or name twice
in the table, the void colour in the table, an image without a mask (or a mask without an image), image / mask /
instance-mask size mismatch, thing pixels without instance id, a sentence for an image, colour or segment that is
not in that mask, an ambiguous colour sentence, an empty sentence, more than 255 classes.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import os.path as osp
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from common import progress, require_dir, require_file  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.structures.panoptic_format import IGNORE_INDEX, LABEL_DIVISOR, rgb2id, write_panoptic_png  # noqa: E402

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
_TRUE = {'1', 'true', 'yes', 'y', 'thing'}
_FALSE = {'0', 'false', 'no', 'n', 'stuff'}


class ConversionError(ValueError):
    """Bad converter input; the message names the file and the record."""


@dataclass(frozen=True)
class ClassEntry:
    category_id: int
    name: str
    isthing: bool
    color: tuple[int, int, int]


@dataclass
class ImageResult:
    """One converted image: its JSON records and how sentences address its segments."""

    image: dict
    annotation: dict
    by_color: dict[tuple[int, int, int], list[int]] = field(default_factory=dict)  # colour → segment ids
    by_instance: dict[tuple[tuple[int, int, int], int], int] = field(default_factory=dict)  # (colour, k) → id
    void_pixels: int = 0


# ---------------------------------------------------------------------------------------------------- parsing
def parse_color(text: str, where: str) -> tuple[int, int, int]:
    """``'r g b'`` (also comma separated) or ``'#rrggbb'`` → an (r, g, b) tuple of 0..255."""
    s = text.strip()
    if re.fullmatch(r'#[0-9a-fA-F]{6}', s):
        return int(s[1:3], 16), int(s[3:5], 16), int(s[5:7], 16)
    parts = re.split(r'[\s,]+', s)
    if len(parts) == 3 and all(re.fullmatch(r'\d{1,3}', p) for p in parts) and all(int(p) <= 255 for p in parts):
        return int(parts[0]), int(parts[1]), int(parts[2])
    raise ConversionError(f"{where}: colour {text!r} is neither 'r g b' (0..255 each) nor '#rrggbb'")


def _hex(color: Sequence[int]) -> str:
    return '#' + ''.join(f'{int(v):02x}' for v in color)


def normalise_sentence(raw: str) -> str:
    """REFER-style ``sent`` (lower case words, no punctuation); same rule as ``grounding.normalise_sentence``."""
    return ' '.join(re.findall(r"[a-z0-9']+", raw.lower()))


def _read_csv(path: str, columns: Sequence[str], what: str) -> list[tuple[int, dict]]:
    require_file(path, what)
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise ConversionError(f'{path}: {what} needs the header columns {list(columns)}, missing {missing} '
                                  f'(got {header})')
        rows = []
        for n, row in enumerate(reader, start=2):  # line 1 is the header
            row = {(k or '').strip(): (v or '').strip() for k, v in row.items()}
            if not any(row.get(c) for c in columns):
                continue  # blank line
            rows.append((n, row))
    return rows


def read_class_table(path: str, void_color: tuple[int, int, int] | None) -> list[ClassEntry]:
    """The class table (see module doc): ids 1..K in row order; every colour and name at most once."""
    rows = _read_csv(path, ('color', 'name', 'isthing'), 'class table')
    classes: list[ClassEntry] = []
    color_row: dict[tuple[int, int, int], int] = {}
    name_row: dict[str, int] = {}
    for n, row in rows:
        where = f'{path} line {n}'
        color = parse_color(row['color'], where)
        if color in color_row:
            raise ConversionError(f'{where}: colour {color} ({_hex(color)}) already used on line {color_row[color]}; '
                                  'a colour may appear only once')
        if color == void_color:
            raise ConversionError(f'{where}: colour {color} is the void colour (--void-color); pick another colour '
                                  "or '--void-color none'")
        name = row['name']
        if not name:
            raise ConversionError(f'{where}: empty class name')
        if name in name_row:
            raise ConversionError(f'{where}: class name {name!r} already used on line {name_row[name]}')
        flag = row['isthing'].lower()
        if flag not in _TRUE | _FALSE:
            raise ConversionError(f"{where}: isthing {row['isthing']!r} is not one of 1/0, true/false, yes/no, "
                                  'thing/stuff')
        color_row[color], name_row[name] = n, n
        classes.append(ClassEntry(len(classes) + 1, name, flag in _TRUE, color))
    if not classes:
        raise ConversionError(f'{path}: the class table lists no class')
    if len(classes) > IGNORE_INDEX:
        raise ConversionError(f'{path}: {len(classes)} classes do not fit uint8 semantic labels 0..254 '
                              f'({IGNORE_INDEX} = void)')
    return classes


def _list_images(images_dir: str) -> dict[str, str]:
    stems: dict[str, str] = {}
    for name in sorted(os.listdir(images_dir)):
        stem, ext = osp.splitext(name)
        if ext.lower() not in IMAGE_EXTS or not osp.isfile(osp.join(images_dir, name)):
            continue
        if stem in stems:
            raise ConversionError(f'{images_dir}: two images share the stem {stem!r} ({stems[stem]}, {name})')
        stems[stem] = name
    if not stems:
        raise ConversionError(f'{images_dir}: no image ({", ".join(IMAGE_EXTS)})')
    return stems


def _read_rgb(path: str, what: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode in ('I;16', 'I;16B', 'I', 'F'):
                raise ConversionError(f'{path}: {what} is a {im.mode} image; expected 8-bit RGB colours')
            return np.asarray(im.convert('RGB'))
    except FileNotFoundError:
        raise ConversionError(f'{path}: {what} not found') from None
    except OSError as e:
        raise ConversionError(f'{path}: cannot read {what} ({e})') from None


def _read_instance_ids(path: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except FileNotFoundError:
        raise ConversionError(f'{path}: instance mask not found') from None
    if arr.ndim == 3:
        return rgb2id(arr[..., :3]).astype(np.int64)
    return arr.astype(np.int64)


def _image_size(path: str) -> tuple[int, int]:
    """(h, w) from the image header (no decoding)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except OSError as e:
        raise ConversionError(f'{path}: cannot read image ({e})') from None
    return h, w


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


# ---------------------------------------------------------------------------------------------------- one image
def convert_image(image_id: int, stem: str, image_file: str, args: argparse.Namespace,
                  classes: list[ClassEntry], void_color: tuple[int, int, int] | None) -> ImageResult:
    """Convert one mask; writes its panoptic and semantic PNGs and returns its records."""
    mask_path = osp.join(args.masks, stem + '.png')
    image_path = osp.join(args.images, image_file)
    if not osp.isfile(mask_path):
        raise ConversionError(f'{image_path}: no mask {mask_path}')
    rgb = _read_rgb(mask_path, 'colour mask')
    h, w = rgb.shape[:2]
    ih, iw = _image_size(image_path)
    if (ih, iw) != (h, w):
        raise ConversionError(f'{mask_path}: mask is {w}x{h} (WxH) but image {image_path} is {iw}x{ih}')
    inst = None
    if args.instance_masks:
        inst_path = osp.join(args.instance_masks, stem + '.png')
        inst = _read_instance_ids(inst_path)
        if inst.shape[:2] != (h, w):
            raise ConversionError(f'{inst_path}: instance mask is {inst.shape[1]}x{inst.shape[0]} (WxH) but mask '
                                  f'{mask_path} is {w}x{h}')
    codes = rgb2id(rgb)
    uniq, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(h, w)
    by_code = {int(rgb2id(np.array([[c.color]], dtype=np.uint8))[0, 0]): c for c in classes}
    void_code = None if void_color is None else int(rgb2id(np.array([[void_color]], dtype=np.uint8))[0, 0])
    pan = np.zeros((h, w), dtype=np.int64)
    sem = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
    result = ImageResult(image=dict(id=image_id, file_name=image_file, height=h, width=w),
                         annotation=dict(image_id=image_id, file_name=stem + '.png', segments_info=[]))
    segments = result.annotation['segments_info']
    for k, code in enumerate(uniq.tolist()):
        region = inverse == k
        color = (code & 255, (code >> 8) & 255, (code >> 16) & 255)
        if code == void_code:
            result.void_pixels = int(counts[k])
            continue
        cls = by_code.get(code)
        if cls is None:
            raise ConversionError(f'{mask_path}: colour {color} ({_hex(color)}) is not in the class table '
                                  f'({int(counts[k])} pixels)')
        sem[region] = cls.category_id - 1
        parts = _instances(region, cls, inst, mask_path, args.connectivity) if cls.isthing else [(0, region)]
        if len(parts) >= LABEL_DIVISOR:
            raise ConversionError(f'{mask_path}: class {cls.name!r} has {len(parts)} instances; at most '
                                  f'{LABEL_DIVISOR - 1} fit the ids category_id * {LABEL_DIVISOR} + k')
        for n, (key, part) in enumerate(parts, start=1):
            sid = cls.category_id * LABEL_DIVISOR + (n if cls.isthing else 0)
            pan[part] = sid
            segments.append(dict(id=sid, category_id=cls.category_id, iscrowd=0, bbox=_bbox(part),
                                 area=int(part.sum())))
            result.by_color.setdefault(cls.color, []).append(sid)
            if cls.isthing:
                result.by_instance[(cls.color, key)] = sid
    segments.sort(key=lambda s: s['id'])
    write_panoptic_png(osp.join(args.out, f'panoptic_{args.split}', stem + '.png'), pan)
    sem_path = osp.join(args.out, f'panoptic_semseg_{args.split}', stem + '.png')
    if not cv2.imwrite(sem_path, sem):
        raise OSError(f'cannot write {sem_path}')
    return result


def _instances(region: np.ndarray, cls: ClassEntry, inst: np.ndarray | None, mask_path: str,
               connectivity: int) -> list[tuple[int, np.ndarray]]:
    """``[(k, mask)]`` of a thing colour's instances: instance ids, or connected components numbered 1.. in raster
    order of their first pixel."""
    if inst is not None:
        ids = inst[region]
        if (ids == 0).any():
            raise ConversionError(f'{mask_path}: {int((ids == 0).sum())} pixels of thing colour {cls.color} '
                                  f'({_hex(cls.color)}, {cls.name!r}) have instance id 0 in the instance mask')
        return [(int(i), region & (inst == i)) for i in np.unique(ids).tolist()]
    n, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=connectivity)
    return [(k, labels == k) for k in range(1, n)]  # cv2 labels components in raster order of their first pixel


# ---------------------------------------------------------------------------------------------------- sentences
def _resolve(target: str, res: ImageResult, classes_by_color: dict, where: str, mask_path: str) -> int:
    """The segment id a sentences-CSV ``color_or_segment`` names in one image."""
    if re.fullmatch(r'\d+', target):
        sid = int(target)
        if not any(s['id'] == sid for s in res.annotation['segments_info']):
            raise ConversionError(f'{where}: segment {sid} is not in {mask_path} (its segments: '
                                  f"{[s['id'] for s in res.annotation['segments_info']]})")
        return sid
    color_text, _, k_text = target.rpartition(':') if ':' in target else (target, '', '')
    color = parse_color(color_text, where)
    cls = classes_by_color.get(color)
    if cls is None:
        raise ConversionError(f'{where}: colour {color} ({_hex(color)}) is not in the class table')
    sids = res.by_color.get(color)
    if not sids:
        raise ConversionError(f'{where}: colour {color} ({_hex(color)}, {cls.name!r}) is absent from {mask_path}')
    if k_text:
        if not cls.isthing or not re.fullmatch(r'\d+', k_text):
            raise ConversionError(f"{where}: '{target}': ':<k>' selects an instance of a thing colour (k an integer)")
        sid = res.by_instance.get((color, int(k_text)))
        if sid is None:
            raise ConversionError(f'{where}: {mask_path} has no instance {k_text} of colour {color} '
                                  f'({cls.name!r}; instances: {sorted(k for c, k in res.by_instance if c == color)})')
        return sid
    if len(sids) > 1:
        raise ConversionError(f'{where}: colour {color} ({cls.name!r}) has {len(sids)} instances in {mask_path}; '
                              f"name one as '{color_text}:<k>' or by segment id {sids}")
    return sids[0]


def attach_sentences(results: list[ImageResult], path: str | None, class_names: bool,
                     classes: list[ClassEntry], args: argparse.Namespace) -> list[dict]:
    """Grounding annotations ``[{id, image_id, segment_id, category_id, sentences}]`` in image / segment order."""
    by_stem = {osp.splitext(r.annotation['file_name'])[0]: r for r in results}
    classes_by_color = {c.color: c for c in classes}
    sentences: dict[tuple[int, int], list[str]] = {}
    if path:
        for n, row in _read_csv(path, ('image', 'color_or_segment', 'sentence'), 'sentences CSV'):
            where = f'{path} line {n}'
            stem = osp.splitext(row['image'])[0] if osp.splitext(row['image'])[1].lower() in IMAGE_EXTS \
                else row['image']
            res = by_stem.get(stem)
            if res is None:
                raise ConversionError(f"{where}: image {row['image']!r} is not among the converted images")
            if not row['sentence']:
                raise ConversionError(f'{where}: empty sentence')
            sid = _resolve(row['color_or_segment'], res, classes_by_color, where,
                           osp.join(args.masks, stem + '.png'))
            sentences.setdefault((res.image['id'], sid), []).append(row['sentence'])
    names = {c.category_id: c.name for c in classes}
    anns, sent_id = [], 0
    for res in results:
        for seg in res.annotation['segments_info']:
            texts = sentences.get((res.image['id'], seg['id'])) or ([names[seg['category_id']]] if class_names else [])
            if not texts:
                continue
            sents = []
            for text in texts:
                sent_id += 1
                sents.append(dict(sent_id=sent_id, raw=text, sent=normalise_sentence(text)))
            anns.append(dict(id=len(anns) + 1, image_id=res.image['id'], segment_id=seg['id'],
                             category_id=seg['category_id'], sentences=sents))
    return anns


# ---------------------------------------------------------------------------------------------------- main
def convert(args: argparse.Namespace) -> dict[str, Any]:
    """Run the conversion; returns the summary counts."""
    require_dir(args.images, 'images')
    require_dir(args.masks, 'masks')
    if args.instance_masks:
        require_dir(args.instance_masks, 'instance masks')
    void_color = None if args.void_color.strip().lower() == 'none' else parse_color(args.void_color, '--void-color')
    classes = read_class_table(args.classes, void_color)
    stems = _list_images(args.images)
    orphans = sorted(osp.splitext(m)[0] for m in os.listdir(args.masks)
                     if m.lower().endswith('.png') and osp.splitext(m)[0] not in stems)
    if orphans:
        raise ConversionError(f'{args.masks}: mask(s) without an image in {args.images}: {orphans[:10]}')
    for sub in (f'panoptic_{args.split}', f'panoptic_semseg_{args.split}'):
        os.makedirs(osp.join(args.out, sub), exist_ok=True)
    results = [convert_image(i, stem, stems[stem], args, classes, void_color)
               for i, stem in progress(enumerate(stems, start=1), len(stems), f'{args.split}: converting masks')]
    categories = [dict(id=c.category_id, name=c.name, isthing=int(c.isthing), color=list(c.color),
                       supercategory='thing' if c.isthing else 'stuff') for c in classes]
    panoptic = dict(info=dict(description=f'colour_masks_to_seem {args.split}'),
                    images=[r.image for r in results], annotations=[r.annotation for r in results],
                    categories=categories)
    anns = attach_sentences(results, args.sentences, args.class_name_sentences, classes, args)
    grounded_images = {a['image_id'] for a in anns}
    grounding = dict(images=[r.image for r in results if r.image['id'] in grounded_images], annotations=anns,
                     categories=categories)
    for name, doc in ((f'panoptic_{args.split}.json', panoptic), (f'grounding_{args.split}.json', grounding)):
        with open(osp.join(args.out, name), 'w', encoding='utf-8') as f:
            json.dump(doc, f)
    things = {c.category_id for c in classes if c.isthing}
    segs = [s for r in results for s in r.annotation['segments_info']]
    pixels = sum(r.image['height'] * r.image['width'] for r in results)
    summary = dict(images=len(results), classes=len(classes), segments=len(segs),
                   thing_instances=sum(s['category_id'] in things for s in segs),
                   stuff_segments=sum(s['category_id'] not in things for s in segs),
                   void_fraction=sum(r.void_pixels for r in results) / max(pixels, 1),
                   grounded_segments=len(anns), sentences=sum(len(a['sentences']) for a in anns))
    print(f"{args.split}: {summary['images']} images, {summary['classes']} classes, {summary['segments']} segments "
          f"({summary['thing_instances']} thing instances, {summary['stuff_segments']} stuff), void "
          f"{100 * summary['void_fraction']:.1f}% of pixels; {summary['grounded_segments']} grounded segments with "
          f"{summary['sentences']} sentences -> {args.out}")
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Colour-coded masks + class table -> SEEM panoptic / semantic / '
                                     'grounding files (see the module docstring for the formats).')
    parser.add_argument('--images', required=True, help='folder of images')
    parser.add_argument('--masks', required=True, help='folder of colour-coded masks (<stem>.png, RGB)')
    parser.add_argument('--classes', required=True, help='class table CSV: color,name,isthing')
    parser.add_argument('--out', required=True, help='output root')
    parser.add_argument('--split', default='train', help='split name used in the output names (default train)')
    parser.add_argument('--instance-masks', default=None, help='folder of instance id PNGs (<stem>.png)')
    parser.add_argument('--sentences', default=None, help='sentences CSV: image,color_or_segment,sentence')
    parser.add_argument('--class-name-sentences', action='store_true',
                        help='segments without a sentence get their class name as the sentence')
    parser.add_argument('--void-color', default='0 0 0', help="unlabelled colour ('r g b', '#rrggbb' or 'none')")
    parser.add_argument('--connectivity', type=int, choices=(4, 8), default=8,
                        help='pixel connectivity of thing instances without --instance-masks (default 8)')
    return parser


def main(argv: list[str] | None = None) -> int:
    convert(build_parser().parse_args(argv))
    return 0


if __name__ == '__main__':
    run_tool(main)
