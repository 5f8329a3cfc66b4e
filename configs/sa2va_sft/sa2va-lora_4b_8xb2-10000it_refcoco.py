# Referring-segmentation SFT of the released Sa2VA-4B on RefCOCO (unc) train, validated on RefCOCO val (cIoU /
# gIoU as Sa2VA / LISA). bash tools/dist_train.sh configs/sa2va_sft/sa2va-lora_4b_8xb2-10000it_refcoco.py 8
_base_ = ['./_base_/sa2va_sft_recipe.py']
