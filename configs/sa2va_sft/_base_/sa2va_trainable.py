# What Sa2VA trains (v1 configs/sa2va_4b.py, llava_sam2.py): LoRA of the LLM, the projector mlp1, SAM2's
# mask decoder, text_hidden_fcs and the token embedding / output rows (of which only the rows of the tokens Sa2VA
# adds learn: Sa2VA(train_new_token_rows_only=True) masks the others' gradient). Everything else is frozen.
trainable_params = dict(train=[r'\.lora_[AB]\.', r'^mlp1\.', r'^grounding_encoder\.sam2_model\.sam_mask_decoder\.',
                               r'^text_hidden_fcs\.', r'embed_tokens\.weight$', r'lm_head\.weight$'])
# Under DDP: SAM2's IoU and object-score heads (they only choose among its 3 masks) and the hypernetworks of the two
# masks not chosen get no gradient in Sa2VA's loss, so DDP must allow unused parameters.
find_unused_parameters = True
# Checkpoints hold the trainable tensors only (LoRA, mlp1, mask decoder, text_hidden_fcs, token rows) + buffers: the
# frozen weights come back from the release folder (or the seeded init of the toy) when the model is built.
custom_hooks = [dict(type='TrainableCheckpointHook')]
