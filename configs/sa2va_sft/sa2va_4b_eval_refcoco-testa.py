# RefCOCO (unc) testA cIoU / gIoU of a Sa2VA checkpoint (the released folder by default: no fine-tuning), as Sa2VA's
# RES.py: one prompt per expression, "<image>\n Please segment {sent} in this image.", no [SEG] -> empty mask.
# python tools/test.py THIS_CONFIG [CHECKPOINT]
_base_ = ['./_base_/sa2va_sft_recipe.py']
test_dataloader = dict(dataset=dict(split='testA'))
