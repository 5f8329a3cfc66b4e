# The toy scenes of toy.py scored by the real SAM + CLIP code path with TINY RANDOM-INIT models
# (segment-anything's Sam with a 1-block 32-wide ViT on 64 px inputs; open_clip 'nss-tiny-vit').
# Random weights carry no signal: SAM's IoU head and the CLIP cosine are arbitrary numbers, so the
# thresholds are opened (keep every non-empty mask) -- this config exercises batching, one embedding per
# scene, the best-of-3 mask choice and the writer, not selection quality. Use coco_gpt.py for real models.
_base_ = ['./toy.py']
work_dir = 'work_dirs/nss/toy_sam_clip'
num_scenes = 8
masks = dict(
    scorer=dict(_delete_=True, type='SamClipScorer', device='cpu', box_batch_size=16, clip_batch_size=16,
                sam=dict(model_type='tiny', checkpoint=None), clip=dict(model='nss-tiny-vit', pretrained=None,
                                                                        prompt='{}')), clip_threshold=-1.0,
    max_uncertainty=1.0, min_mask_area=1)
