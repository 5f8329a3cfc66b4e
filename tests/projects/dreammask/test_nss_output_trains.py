"""The NSS toy pipeline's processed_dataset is valid and the DreamMask toy model trains on it."""
import copy

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import projects.dreammask.dreammask  # noqa: F401
from ovseg.registry import DATA_SAMPLERS, DATASETS, MODELS
from projects.dreammask.dreammask.nss import NSSPipeline
from projects.dreammask.dreammask.processed_format import validate_dataset


def test_nss_toy_output_feeds_dreammask_training(tmp_path, repo_root):
    nss = Config.fromfile(str(repo_root / 'configs/nss/toy.py'))
    nss.num_scenes, nss.show_progress = 6, False
    NSSPipeline(nss, work_dir=str(tmp_path / 'nss')).run()
    processed = tmp_path / 'nss' / 'processed_dataset'
    assert validate_dataset(processed)['errors'] == []

    init_default_scope('ovseg')
    cfg = Config.fromfile(str(repo_root / 'configs/dreammask/dreammask_fcclip-tiny_toy-scenes-nss.py'))
    cfg.train_dataloader.dataset.synthetic.data_root = str(processed)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds.metainfo['classes']) == cfg.model.sra.num_classes  # 9 real + star, water
    sampler = iter(DATA_SAMPLERS.build(cfg.train_dataloader.sampler, default_args=dict(dataset=ds, seed=0)))
    batch = pseudo_collate([ds[next(sampler)] for _ in range(cfg.train_dataloader.batch_size)])
    assert [s.metainfo.get('is_synthetic', False) for s in batch['data_samples']] == [False, False, True, True]
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.set_vocabulary(ds.metainfo['class_synonyms'], ds.metainfo['is_thing'], split='train')
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total) and 'loss_sra' in losses
    total.backward()
