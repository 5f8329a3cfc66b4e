"""Frozen reference outputs of FC-CLIP (tiny ConvNeXt, tiny with the ensemble, R50) and DreamMask (tiny).

Why: refactors of the model code must not change what FC-CLIP computes. Weights are set from the state-dict
*key* (a seeded generator per key, independent of module construction order), inputs are seeded, and the
outputs of tensor mode, predict mode and loss mode are stored under ``tests/data/fcclip_reference/``.
``tests/models/segmentors/test_fcclip_reference.py`` rebuilds the same models and asserts equality (1e-6).

Regenerate only on purpose (the whole point is that it does not change):
    python -m tests.helpers.fcclip_reference --write
"""
from __future__ import annotations

import argparse
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import nn

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / 'tests' / 'data' / 'fcclip_reference'

TRAIN_VOCAB = [['person', 'child'], ['car'], ['tree', 'trees'], ['sky'], ['road', 'street'], ['dog', 'puppy']]
TRAIN_THING = [True, True, False, False, False, True]
# mixes seen (car, sky, person) and unseen classes, with synonyms, to exercise the α/β split and max-over-synonyms
TEST_VOCAB = [['car', 'automobile'], ['sky'], ['water', 'sea', 'lake'], ['person'], ['boat'], ['grass']]
TEST_THING = [True, False, False, True, True, False]


def _norm_like(module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d)) or \
        type(module).__name__ in ('LayerNorm2d', 'LayerNormFp32', 'FrozenBatchNorm2d')


def deterministic_init(model: nn.Module, rename: Callable[[str], str] | None = None) -> None:
    """Set every float parameter / buffer from a generator seeded by its state-dict key.

    ``rename`` maps a current key to the key used for seeding (for refactors that rename modules).
    """
    modules = dict(model.named_modules())
    with torch.no_grad():
        for key, tensor in model.state_dict(keep_vars=True).items():
            if not isinstance(tensor, torch.Tensor) or not torch.is_floating_point(tensor):
                continue
            seed_key = rename(key) if rename else key
            g = torch.Generator().manual_seed(zlib.crc32(seed_key.encode()))
            owner_name, _, leaf = key.rpartition('.')
            owner = modules.get(owner_name)
            shape = tuple(tensor.shape)
            if leaf == 'logit_scale':
                value = torch.full(shape, math.log(1 / 0.07))
            elif leaf == 'running_var':
                value = 1.0 + 0.1 * torch.rand(shape, generator=g)
            elif leaf == 'running_mean':
                value = 0.1 * torch.randn(shape, generator=g)
            elif owner is not None and _norm_like(owner) and leaf == 'weight':
                value = 1.0 + 0.1 * torch.randn(shape, generator=g)
            elif tensor.dim() <= 1:
                value = 0.02 * torch.randn(shape, generator=g)
            else:
                fan_in = max(int(np.prod(shape[1:])), 1)
                value = torch.randn(shape, generator=g) / math.sqrt(fan_in)
            if key.endswith('void_embedding.weight'):
                # the random queries happen to align with +v: with -v they name classes, so panoptic merging,
                # semantic and instance outputs all carry content to compare
                value = -value
            tensor.copy_(value.to(tensor.dtype))


def _inputs(batch: int, hw: tuple[int, int], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, *hw), generator=g, dtype=torch.uint8) for _ in range(batch)]


def _train_samples(hw: tuple[int, int], seed: int, num_classes: int, synthetic: tuple[bool, ...] = (False, False)):
    from ovseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    samples = []
    for is_syn in synthetic:
        n = 3
        masks = torch.zeros(n, h, w, dtype=torch.bool)
        masks[0, :h // 2] = True
        masks[1, h // 2:] = True
        y, x = torch.randint(0, h // 2, (1,), generator=g).item(), torch.randint(0, w // 2, (1,), generator=g).item()
        masks[2, y:y + h // 3, x:x + w // 3] = True
        masks[0] &= ~masks[2]
        masks[1] &= ~masks[2]
        labels = torch.randint(0, num_classes, (n,), generator=g)
        s = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, is_synthetic=is_syn))
        s.gt_instances = InstanceData(masks=masks, labels=labels)
        samples.append(s)
    return samples


def _test_samples(batch: int, img_shape: tuple[int, int], ori_shape: tuple[int, int]):
    from ovseg.structures import SegDataSample
    return [SegDataSample(metainfo=dict(img_shape=img_shape, ori_shape=ori_shape)) for _ in range(batch)]


CASES: dict[str, dict[str, Any]] = {
    'tiny': dict(config='configs/fcclip/fcclip_tiny_toy-scenes.py', hw=(64, 96), model_overrides={}),
    # random weights give heavily overlapping masks: a low overlap threshold keeps panoptic segments to compare
    'tiny_ensemble': dict(config='configs/fcclip/fcclip_tiny_toy-scenes.py', hw=(64, 96),
                          model_overrides=dict(test_cfg=dict(geometric_ensemble_alpha=0.4, overlap_threshold=0.2,
                                                             geometric_ensemble_beta=0.8, instance_on=True))),
    'r50': dict(config='configs/fcclip/fcclip_r50_eval_ade20k-150.py', hw=(64, 96),
                model_overrides=dict(backbone=dict(pretrained=None, allow_random_init=True),
                                    test_cfg=dict(overlap_threshold=0.0)), stored_queries=40),
    'dreammask_tiny': dict(config='configs/dreammask/dreammask_fcclip-tiny_toy-scenes.py', hw=(64, 96),
                           model_overrides={}, synthetic=(False, True)),
}


def build_model(case: str, rename: Callable[[str], str] | None = None) -> nn.Module:
    import sys
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    init_default_scope('ovseg')
    spec = CASES[case]
    cfg = Config.fromfile(str(REPO / spec['config']))
    if cfg.get('custom_imports'):
        import importlib
        for mod in cfg.custom_imports['imports']:
            importlib.import_module(mod)
    model_cfg = Config(dict(model=cfg.model))
    model_cfg.merge_from_dict({f'model.{k}': v for k, v in _flatten(spec['model_overrides']).items()})
    import ovseg.models  # noqa: F401
    from ovseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(model_cfg.model)
    deterministic_init(model, rename)
    model.set_vocabulary(TRAIN_VOCAB, TRAIN_THING, split='train')
    model.set_vocabulary(TEST_VOCAB, TEST_THING, split='test')
    return model


def _flatten(d: dict, prefix: str = '') -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def run_case(case: str, model: nn.Module) -> dict[str, np.ndarray]:
    """All reference outputs of ``case`` as a flat dict of arrays."""
    spec = CASES[case]
    hw = spec['hw']
    out: dict[str, np.ndarray] = {}
    # tensor mode (eval, test vocabulary)
    model.eval()
    data = model.data_preprocessor(dict(inputs=_inputs(2, hw, 1), data_samples=None), False)
    with torch.no_grad():
        raw = model(data['inputs'], None, mode='tensor')
    nq = spec.get('stored_queries')  # large models: store the masks of the first queries only (file size)
    out['tensor.pred_logits'] = raw['pred_logits'].numpy()
    out['tensor.pred_masks'] = raw['pred_masks'][:, :nq].numpy()
    for i, aux in enumerate(raw['aux_outputs']):
        out[f'tensor.aux{i}.pred_logits'] = aux['pred_logits'].numpy()
        if i in (0, len(raw['aux_outputs']) - 1):
            out[f'tensor.aux{i}.pred_masks'] = aux['pred_masks'][:, :nq].numpy()
    # predict mode: padded input, valid region smaller than the batch, original size larger
    img_shape, ori_shape = (hw[0] - 4, hw[1] - 6), (hw[0] * 2 - 3, hw[1] * 2 + 5)
    samples = _test_samples(2, img_shape, ori_shape)
    inputs = [x[:, :img_shape[0], :img_shape[1]] for x in _inputs(2, hw, 2)]
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
    with torch.no_grad():
        preds = model(**data, mode='predict')
    for i, p in enumerate(preds):
        if 'pred_sem_seg' in p:
            out[f'predict{i}.sem_seg'] = p.pred_sem_seg.data.numpy()
        if 'pred_panoptic_seg' in p:
            out[f'predict{i}.panoptic'] = p.pred_panoptic_seg.data.numpy()
            segs = p.metainfo['pred_segments_info']
            out[f'predict{i}.segments'] = np.array(
                [[s['id'], s['category_id'], float(s['isthing']), s['score']] for s in segs],
                dtype=np.float64).reshape(-1, 4)
        if 'pred_instances' in p:
            out[f'predict{i}.inst_scores'] = p.pred_instances.scores.numpy()
            out[f'predict{i}.inst_labels'] = p.pred_instances.labels.numpy()
            out[f'predict{i}.inst_mask_area'] = p.pred_instances.masks.flatten(1).sum(1).numpy()
    # loss mode (train vocabulary), seeded point sampling
    model.train()
    samples = _train_samples(hw, 3, len(TRAIN_VOCAB), spec.get('synthetic', (False, False)))
    data = model.data_preprocessor(dict(inputs=_inputs(2, hw, 4), data_samples=samples), True)
    torch.manual_seed(123)
    losses = model(**data, mode='loss')
    for k, v in sorted(losses.items()):
        out[f'loss.{k}'] = v.detach().numpy()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--write', action='store_true', help='(re)write the stored references')
    parser.add_argument('--cases', nargs='*', default=list(CASES))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for case in args.cases:
        result = run_case(case, build_model(case))
        path = DATA_DIR / f'{case}.npz'
        if args.write:
            np.savez_compressed(path, **result)
            print(f'wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(result)} arrays)')
        else:
            ref = np.load(path)
            worst = max(float(np.abs(ref[k].astype(np.float64) - result[k].astype(np.float64)).max(initial=0))
                        for k in ref.files)
            print(f'{case}: max |diff| {worst:.3g} over {len(ref.files)} arrays; keys equal: '
                  f'{sorted(ref.files) == sorted(result)}')


if __name__ == '__main__':
    main()
