# FC-CLIP with the RN50 CLIP (fcclip_convnext_large_eval_ade20k_r50.yaml: only the CLIP model, EMBED_DIM and
# ENSEMBLE_ON_VALID_MASK differ from the ConvNeXt-L model; fcclip/fcclip.py; FC-CLIP issue #24).
_base_ = ['./fcclip_convnext_large.py']
embed_dim = 1024  # FC_CLIP.EMBED_DIM 1024 (RN50 text_projection width)

model = dict(
    # FC_CLIP.CLIP_MODEL_NAME RN50, CLIP_PRETRAINED_WEIGHTS openai. OpenAI CLIPs were trained with QuickGELU
    # (open_clip's 'openai' tag: quick_gelu=True; FC-CLIP's open_clip loaded them as such). CLIPBackbone's
    # force_quick_gelu=None resolves to QuickGELU for this tag and for a local RN50 file (every RN50 tag is
    # QuickGELU); RN101/RN50x4/RN50x16/RN50x64 likewise. Left unset so random-init test models keep GELU.
    backbone=dict(model_name='RN50', pretrained='openai'),
    transformer_decoder=dict(class_head=dict(embed_dim=embed_dim)),
    # ResNet CLIPs re-run the attention pool inside each mask for the out-of-vocab branch; queries whose
    # mask is empty on the CLIP grid fall back to the in-vocab prediction (alpha = beta = 0).
    test_cfg=dict(ensemble_on_valid_mask=True),  # FC_CLIP.ENSEMBLE_ON_VALID_MASK True
)
