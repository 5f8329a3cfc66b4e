# DreamMask toy trained on the NSS pipeline's own output: run `python tools/nss/run.py configs/nss/toy.py`
# first (offline, < 1 min; writes work_dirs/nss/toy/processed_dataset), then
#   bash tools/dist_train.sh configs/dreammask/dreammask_fcclip-tiny_toy-scenes-nss.py 2
# NSS novel names (star, cross) and its base names map onto the real ToyScenes training vocabulary; names
# absent from it (star, water) become the 2 novel classes, as in the procedural toy config.
_base_ = ['./dreammask_fcclip-tiny_toy-scenes.py']
nss_root = 'work_dirs/nss/toy/processed_dataset'
train_dataloader = dict(dataset=dict(synthetic=dict(
    _delete_=True, type='NSSSceneDataset', data_root=nss_root, min_clip_score=0.25, max_mask_uncertainty=0.30,
    pipeline={{_base_.synthetic_pipeline}})))
