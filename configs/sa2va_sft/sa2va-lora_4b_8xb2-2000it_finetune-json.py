# Your own data in Sa2VA's fine-tune JSON (annotations.json: [{"image", "mask": [[polygon, ...] per object],
# "text": [description per object]}], images under images/; Sa2VA v2 docs/finetune.md), from the released
# Sa2VA-4B, evaluated on RefCOCO val. Bad records stop with the file and record named (on_bad_record='skip'
# counts and reports them instead).
_base_ = ['./_base_/sa2va_sft_recipe.py']
max_iters = 2000
train_dataloader = dict(dataset=dict(
    _delete_=True, type='Sa2VAFinetuneDataset', data_root='data/my_data', ann_file='annotations.json',
    img_prefix='images', group='image', pipeline={{_base_.train_pipeline}}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=int(0.05 * max_iters)),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=int(0.05 * max_iters), end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
