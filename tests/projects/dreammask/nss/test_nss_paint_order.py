"""NSS layouts are painted back to front: a large background box listed late no longer erases earlier objects."""
import json

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

import projects.dreammask.dreammask  # noqa: F401
from projects.dreammask.dreammask import NSSSceneDataset
from projects.dreammask.dreammask.nss.layout import Layout, LayoutObject, draw_layout_png, paint_order
from projects.dreammask.dreammask.nss.masks.scorers import ProceduralOracleScorer
from projects.dreammask.dreammask.nss.render import ProceduralRenderer

# objects as an LLM may list them: the cup and the plate first, the table that carries them last
OBJECTS = [LayoutObject('cup', 10, 10, 8, 8), LayoutObject('plate', 30, 12, 14, 10),
           LayoutObject('table', 0, 0, 64, 48)]


def test_paint_order_larger_first_stable_and_layout_mode():
    assert paint_order([64, 140, 3072]) == [2, 1, 0]
    assert paint_order([5, 9, 5, 9]) == [1, 3, 0, 2]  # equal areas keep their listed order
    assert paint_order([64, 140, 3072], 'layout') == [0, 1, 2]
    with pytest.raises(ValueError, match="paint_order must be one of \\('area', 'layout'\\)"):
        paint_order([1], 'depth')


def test_renderer_and_oracle_keep_objects_under_a_late_background():
    layout = Layout('scene_00000', 64, 48, list(OBJECTS))
    renderer = ProceduralRenderer(stuff_names=['table'])
    img, full = renderer.render_with_masks(layout, seed=3)
    img = np.asarray(img)
    vis = ProceduralOracleScorer().score_scene(img, layout, dict(renderer=renderer, render_seed=3))['masks']
    assert vis[0].sum() == full[0].sum() > 0 and vis[1].sum() == full[1].sum() > 0  # cup, plate fully visible
    assert vis[2].sum() == full[2].sum() - full[0].sum() - full[1].sum()  # the table lies behind them
    table_color = np.asarray(renderer.appearance('table').color, np.float64)
    cup_pixels = img[full[0]].astype(np.float64).mean(0)
    assert np.abs(cup_pixels - table_color).sum() > 60  # the cup is drawn, not the table's texture
    # the old behaviour, explicitly: painted as listed, the table erases both
    listed = ProceduralRenderer(stuff_names=['table'], paint_order='layout')
    _, full_l = listed.render_with_masks(layout, seed=3)
    vis_l = ProceduralOracleScorer().score_scene(np.asarray(listed.render_with_masks(layout, 3)[0]), layout,
                                                 dict(renderer=listed, render_seed=3))['masks']
    assert vis_l[0].sum() == 0 and vis_l[1].sum() == 0 and vis_l[2].sum() == full_l[2].sum()
    assert np.asarray(draw_layout_png(layout)).shape == (48, 64, 3)


def _scene(root, masks, names):
    """One processed scene with overlapping (SAM-like, full-box) masks in the given JSON order."""
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(root / 'images/real_00000.png')
    objects = []
    for k, (m, name) in enumerate(zip(masks, names)):
        Image.fromarray(m.astype(np.uint8) * 255).save(root / f'masks/scene_00000_obj_{k:02d}.png')
        ys, xs = np.nonzero(m)
        objects.append(dict(index=k, name=name, box=dict(x=int(xs.min()), y=int(ys.min()),
                                                         w=int(np.ptp(xs)) + 1, h=int(np.ptp(ys)) + 1),
                            mask_path=f'masks/scene_00000_obj_{k:02d}.png', clip_score=0.9, mask_uncertainty=0.1))
    (root / 'scene_00000.json').write_text(json.dumps(dict(
        scene_id='scene_00000', real_image='images/real_00000.png', canvas_width=64, canvas_height=48,
        objects=objects)))


@pytest.mark.parametrize('order, cup_area', [('area', 64), ('layout', 0)])
def test_loader_keeps_objects_under_a_late_background_mask(tmp_path, order, cup_area):
    init_default_scope('ovseg')
    masks = []
    for o in OBJECTS:
        m = np.zeros((48, 64), bool)
        m[o.y:o.y + o.h, o.x:o.x + o.w] = True
        masks.append(m)
    _scene(tmp_path, masks, [o.name for o in OBJECTS])
    ds = NSSSceneDataset(str(tmp_path), base_vocabulary=[['cup'], ['plate'], ['table']],
                         pipeline=[dict(type='LoadImage'), dict(type='LoadNSSAnnotations', paint_order=order),
                                   dict(type='PackSegInputs', with_instances=True)])
    sample = ds[0]['data_samples']
    areas = {s['category_id']: s['area'] for s in sample.segments_info}
    assert areas.get(0, 0) == cup_area
    if order == 'area':
        assert areas == {0: 64, 1: 140, 2: 64 * 48 - 64 - 140}
        assert sorted(sample.gt_instances.labels.tolist()) == [0, 1, 2]
        pan = sample.gt_panoptic_seg.data[0].numpy()
        assert (pan[10:18, 10:18] == 1).all() and (pan[12:22, 30:44] == 2).all()  # ids in JSON order
    else:  # as listed: the table, last, covers the cup and the plate, which vanish
        assert areas == {2: 64 * 48}
