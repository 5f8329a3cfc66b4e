"""The DreamMask variant that keeps FC-CLIP's real-data exposure: 2 real + 1 synthetic per GPU, 8 GPUs."""
from mmengine.config import Config

VARIANT = 'configs/dreammask/dreammask_fcclip-convnext-large_8xb3-368750it_coco-panoptic-nss-2real1syn.py'
GPUS = 8  # the name's 8xb3 and the FC-CLIP recipe's 8 GPUs


def _real_per_iteration(cfg):
    s = cfg.train_dataloader.sampler
    assert s.batch_size == cfg.train_dataloader.batch_size  # the sampler must see the loader's batch
    return GPUS * (s.batch_size - s.num_synthetic), GPUS * s.num_synthetic


def test_variant_keeps_fcclip_real_exposure(repo_root):
    fcclip = Config.fromfile(str(repo_root / 'configs/fcclip/fcclip_convnext-large_8xb2-368750it_coco-panoptic.py'))
    headline = Config.fromfile(str(repo_root / 'configs/dreammask_fcclip.py'))
    variant = Config.fromfile(str(repo_root / VARIANT))
    fcclip_real = GPUS * fcclip.train_dataloader.batch_size
    assert fcclip_real == 16
    assert _real_per_iteration(headline) == (8, 8)  # the confound: half of FC-CLIP's real images
    assert _real_per_iteration(variant) == (16, 8)  # FC-CLIP's real stream + 1 synthetic per GPU
    assert variant.train_cfg.max_iters == fcclip.train_cfg.max_iters == 368750
    assert variant.optim_wrapper.optimizer.lr == fcclip.optim_wrapper.optimizer.lr == 1e-4
    # nothing else moves: model, data sources and schedule equal the headline config's
    assert variant.model == headline.model
    assert variant.train_dataloader.dataset == headline.train_dataloader.dataset
    assert variant.param_scheduler == headline.param_scheduler
