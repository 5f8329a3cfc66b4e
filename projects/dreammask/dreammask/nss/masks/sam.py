"""SAM box-prompted masks: one image embedding per scene, all boxes of the scene decoded in batches."""
from __future__ import annotations

from functools import partial

import numpy as np
import torch

from ..errors import require_path

SAM_URLS = {
    'vit_h': 'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth',
    'vit_l': 'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth',
    'vit_b': 'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth',
}
TINY_SAM = dict(img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, prompt_dim=32, window_size=4)


def build_tiny_sam(img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, prompt_dim=32,
                   window_size=4, seed=0):
    """A randomly initialised miniature SAM (same classes as the real one) for tests and toy runs."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        emb = img_size // patch_size
        sam = Sam(
            image_encoder=ImageEncoderViT(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim,
                                          depth=depth, num_heads=num_heads, mlp_ratio=2, out_chans=prompt_dim,
                                          qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm,
                                                                            eps=1e-6), use_rel_pos=True,
                                          window_size=window_size, global_attn_indexes=[depth - 1]),
            prompt_encoder=PromptEncoder(embed_dim=prompt_dim, image_embedding_size=(emb, emb),
                                         input_image_size=(img_size, img_size), mask_in_chans=4),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3, transformer=TwoWayTransformer(depth=1, embedding_dim=prompt_dim,
                                                                       mlp_dim=2 * prompt_dim, num_heads=2),
                transformer_dim=prompt_dim, iou_head_depth=2, iou_head_hidden_dim=prompt_dim),
            pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


def build_sam(checkpoint: str | None = None, model_type: str = 'vit_h', tiny_cfg: dict | None = None,
              device: str = 'cpu'):
    """SAM ``vit_h``/``vit_l``/``vit_b`` from a local checkpoint (loaded with ``weights_only=True``), or the
    random-init ``'tiny'`` model (only when the config asks for it)."""
    if model_type == 'tiny':
        return build_tiny_sam(**{**TINY_SAM, **(tiny_cfg or {})}).to(device)
    if model_type not in SAM_URLS:
        raise ValueError(f'unknown SAM model_type {model_type!r}; choose vit_h, vit_l, vit_b or tiny')
    require_path(
        checkpoint, f'SAM {model_type} checkpoint',
        f'Download it once with `wget {SAM_URLS[model_type]}` and set masks.sam.checkpoint to the file.',
        is_dir=False)
    from segment_anything import sam_model_registry
    sam = sam_model_registry[model_type](checkpoint=None)
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    sam.load_state_dict(state)
    return sam.eval().to(device)


class SamBoxSegmenter:
    """``SamPredictor`` prompted with each layout box, ``multimask_output=True``; the best-scoring of the 3
    masks is kept. ``set_image`` (the expensive ViT pass) runs once per scene; boxes are decoded in chunks of
    ``box_batch_size`` with ``predict_torch``."""

    def __init__(self, sam, box_batch_size: int = 64):
        from segment_anything import SamPredictor
        self.predictor = SamPredictor(sam)
        self.box_batch_size = box_batch_size

    @torch.no_grad()
    def segment(self, image: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``image`` H×W×3 uint8 RGB; returns (masks N×H×W bool, best SAM scores N float)."""
        n = len(boxes_xyxy)
        h, w = image.shape[:2]
        if n == 0:
            return np.zeros((0, h, w), bool), np.zeros((0, ), np.float32)
        self.predictor.set_image(image, image_format='RGB')
        device = self.predictor.device
        masks_out, scores_out = [], []
        boxes = torch.as_tensor(np.asarray(boxes_xyxy, np.float32), device=device)
        for i in range(0, n, self.box_batch_size):
            b = self.predictor.transform.apply_boxes_torch(boxes[i:i + self.box_batch_size], (h, w))
            masks, iou, _ = self.predictor.predict_torch(point_coords=None, point_labels=None, boxes=b,
                                                         multimask_output=True)
            best = iou.argmax(dim=1)
            idx = torch.arange(len(best), device=device)
            masks_out.append(masks[idx, best].cpu().numpy().astype(bool))
            scores_out.append(iou[idx, best].float().cpu().numpy())
        self.predictor.reset_image()
        return np.concatenate(masks_out), np.concatenate(scores_out)
