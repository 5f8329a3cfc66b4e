# Seed 000's train_net_nss.py mode: train on the NSS scenes alone. LIMITATION: with no real image in any
# batch the real-feature bank never fills, so L_sra is always 0 (the public script had the same problem);
# this is synthetic-data fine-tuning, not DreamMask's alignment. Names still map onto COCO's vocabulary.
_base_ = ['./dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
train_dataloader = dict(
    sampler=dict(_delete_=True, type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, type='NSSSceneDataset', data_root={{_base_.synthetic_root}},
                 base_vocabulary='coco_panoptic', min_clip_score=0.25, max_mask_uncertainty=0.30,
                 pipeline={{_base_.synthetic_pipeline}}))
