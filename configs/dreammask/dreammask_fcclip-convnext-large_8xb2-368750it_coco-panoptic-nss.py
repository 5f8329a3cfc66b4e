# DreamMask on FC-CLIP ConvNeXt-L (seeds 000/001): COCO panoptic real images + NSS synthetic scenes, trained
# with L = L_seg + λ·L_sra and the FC-CLIP recipe (368,750 it, batch 16, AdamW 1e-4, wd 0.05, clip 0.01, AMP,
# LSJ 1024). Launch (8 GPUs):
#   bash tools/dist_train.sh configs/dreammask_fcclip.py 8   (the headline entry point, which inherits this file)
# Synthetic data: `python tools/nss/run.py configs/nss/coco_gpt.py` writes processed_dataset/ (docs/nss.md);
# check it with `python tools/nss/validate_dataset.py data/nss/processed_dataset` before training.
_base_ = ['../fcclip/fcclip_convnext-large_8xb2-368750it_coco-panoptic.py']
custom_imports = dict(imports=['projects.dreammask.dreammask'], allow_failed_imports=False)

synthetic_root = 'data/nss/processed_dataset'
batch_size = 2      # per GPU (IMS_PER_BATCH 16 over 8 GPUs)
num_synthetic = 1   # per GPU batch: 1 real + 1 synthetic. The paper's mixing ratio is unknown (not in the code);
                    # every batch with synthetic objects also carries real ones that fill the bank.

# Seen/unseen protocol of FC-CLIP's ensemble during validation: COCO's classes only, as the DreamMask evaluation
# configs state (configs/dreammask/_base_/dreammask_eval.py), so in-training validation and tools/test.py agree.
seen_vocabulary = 'coco_panoptic'

model = dict(
    type='DreamMaskFCCLIP',
    sra=dict(
        # Bank capacity in classes: COCO's 133 + up to 512 novel NSS names (CNA keeps names seen >= 2 times;
        # the count is data-dependent). Unused rows cost memory only (645 x 32 x 768 floats = 63 MB).
        num_classes=133 + 512,
        memory_bank_size=32,  # MODEL.DREAMMASK.MEMORY_BANK_SIZE 32 ("β", DM Base-COCO yaml)
        lambda_sra=0.1))      # MODEL.DREAMMASK.LAMBDA_SRA 0.1 ("λ")

synthetic_pipeline = [  # the COCO LSJ recipe, reading NSS masks instead of a panoptic PNG
    dict(type='LoadImage'),
    dict(type='LoadNSSAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizeScale', min_scale=0.1, max_scale=2.0, target_size=(1024, 1024)),
    dict(type='FixedSizeCrop', crop_size=(1024, 1024)),
    dict(type='PackSegInputs', with_instances=True, extra_meta_keys=('is_synthetic',)),  # DreamMaskFCCLIP.synthetic_key
]
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(_delete_=True, type='RealSyntheticMixSampler', batch_size=batch_size,
                 num_synthetic=num_synthetic, shuffle=True),
    dataset=dict(
        _delete_=True,
        type='RealSyntheticDataset',
        real={{_base_.train_dataloader.dataset}},
        # names map onto COCO's vocabulary (case/space/synonym-insensitive); the rest become novel classes.
        # mask_path filters reproduce mask_and_selection.py's thresholds for datasets written without them.
        synthetic=dict(type='NSSSceneDataset', data_root=synthetic_root, min_clip_score=0.25,
                       max_mask_uncertainty=0.30, pipeline=synthetic_pipeline)))
