# The ADE20K-150 evaluation with the other seen/unseen protocol: a test class counts as seen when one of its synonyms
# is in the vocabulary the checkpoint was trained on (COCO + the novel NSS names), read from the checkpoint.
_base_ = ['./dreammask_fcclip-convnext-large_eval_ade20k-150.py']
seen_vocabulary = None
