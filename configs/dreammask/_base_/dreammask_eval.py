# What every DreamMask evaluation config adds to FC-CLIP's eval config of the same dataset: the DreamMask model
# (so its checkpoints, SRA bank included, load without unexpected keys) and the seen/unseen protocol.
custom_imports = dict(imports=['projects.dreammask.dreammask'], allow_failed_imports=False)
# The headline config's SRA (dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py): the bank rows must
# match the checkpoint's.
sra = dict(num_classes=133 + 512, memory_bank_size=32, lambda_sra=0.1)
# FC-CLIP's protocol: a test class counts as seen (geometric ensemble α = 0.4) when one of its synonyms is a COCO
# panoptic class, otherwise unseen (β = 0.8) — so DreamMask's numbers are comparable with FC-CLIP's. The novel
# NSS names the model was also trained on count as unseen. Set `seen_vocabulary = None` to score with the training
# vocabulary the checkpoint carries (COCO + novel NSS names) instead; the headline training config states the same
# protocol, so its in-training validation reports what these configs report.
seen_vocabulary = 'coco_panoptic'
