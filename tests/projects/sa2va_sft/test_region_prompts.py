"""Sa2VA's <vp> region prompts: token cells, the region text, the selected tokens, and the chat API with masks."""
import numpy as np
import pytest
import torch

from projects.sa2va_sft.sa2va_sft.region_prompts import (
    insert_region_text,
    region_cells,
    region_text,
    region_tokens,
)


def test_cells_text_and_tokens():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True  # top-left quarter -> the top-left cell of a 2x2 grid
    masks[1, 6, 6] = True    # one pixel: no cell at nearest sampling -> its best cell (bottom-right)
    cells = region_cells(masks, 2)
    assert cells.tolist() == [[[True, False], [False, False]], [[False, False], [False, True]]]
    text = region_text(cells)
    assert text == ('\nThere are 2 part regions in the picture: region1<vp><IMG_CONTEXT></vp>, '
                    'region2<vp><IMG_CONTEXT></vp>.\n')
    tokens = torch.arange(4 * 3, dtype=torch.float32).view(4, 3)  # row-major cells (0,0) (0,1) (1,0) (1,1)
    torch.testing.assert_close(region_tokens(tokens, cells), tokens[[0, 3]])
    assert insert_region_text('<img>xx</img> tell me', text) == '<img>xx</img>' + text + ' tell me'
    with pytest.raises(ValueError, match='empty'):
        region_cells(torch.zeros(1, 8, 8, dtype=torch.bool), 2)


def test_predict_forward_with_mask_prompts(monkeypatch):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from PIL import Image

    import projects.sa2va_sft.sa2va_sft as pkg
    from ovseg.registry import MODELS
    from tests.projects.sa2va_sft.test_sa2va_model import CONFIG
    init_default_scope('ovseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(CONFIG)).model).eval()
    seen = {}

    def generate(lm, embeds, mask, seg_id, stops, max_new_tokens=1):
        seen['embeds'] = embeds
        return pkg.SegGeneration(torch.tensor([[5]]), [torch.zeros(0, embeds.shape[-1])])

    monkeypatch.setattr('projects.sa2va_sft.sa2va_sft.sa2va.greedy_generate_with_seg', generate)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 56, 3), dtype=np.uint8))
    masks = np.zeros((1, 56, 56), dtype=bool)
    masks[0, :28, :28] = True
    question = '<image>\nPlease give me a short description of the region in the picture marked by region1.'
    out = model.predict_forward(question, image=image, mask_prompts=masks)
    assert out['prediction_masks'] == []
    with_regions = seen['embeds']
    model.predict_forward(question, image=image)
    # one more region token (the top-left of the 2x2 grid) and the region text around it
    assert with_regions.shape[1] > seen['embeds'].shape[1] + 1
    tile_tokens = model.visual_tokens([pkg.normalize_tiles([image], model.image_size)])[0]
    assert any(torch.allclose(row, tile_tokens[0]) for row in with_regions[0])
    with pytest.raises(ValueError, match='images only'):
        model.predict_forward(question, video=[image], mask_prompts=masks)
