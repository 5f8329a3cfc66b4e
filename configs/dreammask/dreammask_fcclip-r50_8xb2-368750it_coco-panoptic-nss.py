# DreamMask on FC-CLIP R50 (CLIP RN50, openai weights, embed 1024, ensemble on valid masks): the headline
# recipe with the R50 model of configs/_base_/models/fcclip_r50.py.
_base_ = ['./dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
model = dict(
    backbone=dict(model_name='RN50', pretrained='openai'),          # FC_CLIP.CLIP_MODEL_NAME RN50
    transformer_decoder=dict(class_head=dict(embed_dim=1024)),      # FC_CLIP.EMBED_DIM 1024
    test_cfg=dict(ensemble_on_valid_mask=True))                     # FC_CLIP.ENSEMBLE_ON_VALID_MASK True
