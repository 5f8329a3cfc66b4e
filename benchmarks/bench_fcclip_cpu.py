"""CPU speed of the tiny FC-CLIP against transformers' Mask2Former at matched sizes, in one process.

    python benchmarks/bench_fcclip_cpu.py [--config configs/fcclip/fcclip_tiny_toy-scenes.py]
        [--batch 4] [--size 128] [--steps 8] [--warmup 2] [--threads 2] [--hf-backbone same|transformers]
        [--profile] [--json out.json]

Both models are random-init and get the same synthetic batch (images + 3 GT masks / image). Matched:
hidden dim, pixel-decoder (deformable encoder) layers and heads, decoder layers, queries, FFN widths,
training points, input size, batch and thread count. Backbone: ours is the frozen tiny CLIP ConvNeXt
(timm ``convnext_atto``: depths 2-2-6-2, widths 40-80-160-320, with 1×1-conv MLPs). ``--hf-backbone same``
(default) gives Mask2Former that very trunk module (shared, frozen), so both compute identical features and
the comparison measures the segmentation model; ``--hf-backbone transformers`` gives it a transformers
``ConvNextConfig`` with the same depths/widths (Linear MLPs, a different implementation), frozen too
(``requires_grad=False``) so both train the same parts. Differences that remain (by design of FC-CLIP): ours
also runs the CLIP text tower once per
vocabulary (cached, excluded after warm-up), the in-vocab mask-pooling class head, and at inference the
out-of-vocab CLIP pass (mask pooling + CLIP head) plus the geometric ensemble and full panoptic/semantic
post-processing at image size; transformers' ``Mask2FormerForUniversalSegmentation`` inference returns
raw logits only (we time its ``post_process_panoptic_segmentation`` separately and include it).
Times are medians over ``--steps`` after ``--warmup`` iterations; the two models alternate step by step so
background load affects both alike.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, REPO)


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=osp.join(REPO, 'configs', 'fcclip', 'fcclip_tiny_toy-scenes.py'))
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--steps', type=int, default=8)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--num-classes', type=int, default=9)
    p.add_argument('--hf-backbone', choices=('same', 'transformers'), default='same',
                   help="Mask2Former's backbone: our frozen timm trunk itself, or transformers' ConvNext")
    p.add_argument('--profile', action='store_true', help='also time the loss path of ours piece by piece')
    p.add_argument('--json', default=None, help='also write the results here')
    return p.parse_args(argv)


def _synthetic_batch(batch: int, size: int, num_classes: int, seed: int = 0):
    import torch
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (batch, 3, size, size), generator=g, dtype=torch.uint8)
    masks, labels = [], []
    for _ in range(batch):
        m = torch.zeros(3, size, size, dtype=torch.bool)
        m[0, :size // 2] = True  # top band (stuff)
        m[1, size // 2:] = True  # bottom band (stuff)
        y, x = torch.randint(0, size // 2, (2, ), generator=g).tolist()
        m[2, y:y + size // 4, x:x + size // 4] = True  # a thing
        m[0] &= ~m[2]
        m[1] &= ~m[2]
        masks.append(m)
        labels.append(torch.randint(0, num_classes, (3, ), generator=g))
    return imgs, masks, labels


def build_ours(cfg_path: str, num_classes: int):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import ovseg.models  # noqa: F401
    from ovseg.registry import MODELS
    init_default_scope('ovseg')
    cfg = Config.fromfile(cfg_path)
    model = MODELS.build(cfg.model)
    vocab = [[f'class {i}'] for i in range(num_classes)]
    model.set_vocabulary(vocab, [i % 2 == 0 for i in range(num_classes)], split='train')
    model.set_vocabulary(vocab, [i % 2 == 0 for i in range(num_classes)], split='test')
    return model, cfg


def ours_sizes(cfg) -> dict:
    """The sizes of the tiny config that the Mask2Former config must match."""
    m = cfg.model
    pd, td, cr = m.pixel_decoder, m.transformer_decoder, m.criterion
    return dict(hidden_dim=td.get('hidden_dim', 256),
                num_queries=td.get('num_queries', 100),
                dec_layers=td.get('dec_layers', 9),
                dec_heads=td.get('nheads', 8),
                dec_ffn=td.get('dim_feedforward', 2048),
                conv_dim=pd.get('conv_dim', 256),
                mask_dim=pd.get('mask_dim', 256),
                enc_layers=pd.get('transformer_enc_layers', 6),
                enc_ffn=pd.get('transformer_dim_feedforward', 1024),
                num_points=cr.get('num_points', 12544))


def build_mask2former(sizes: dict, num_classes: int):
    from transformers import ConvNextConfig, Mask2FormerConfig, Mask2FormerForUniversalSegmentation
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    backbone = ConvNextConfig(depths=[2, 2, 6, 2],
                              hidden_sizes=[40, 80, 160, 320],
                              out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    cfg = Mask2FormerConfig(
        backbone_config=backbone,
        feature_size=sizes['conv_dim'],
        mask_feature_size=sizes['mask_dim'],
        hidden_dim=sizes['hidden_dim'],
        encoder_feedforward_dim=sizes['enc_ffn'],
        encoder_layers=sizes['enc_layers'],
        decoder_layers=sizes['dec_layers'] + 1,  # HF uses N-1 layers
        num_attention_heads=sizes['dec_heads'],
        dim_feedforward=sizes['dec_ffn'],
        num_queries=sizes['num_queries'],
        train_num_points=sizes['num_points'],
        num_labels=num_classes)
    model = Mask2FormerForUniversalSegmentation(cfg)
    for p in model.model.pixel_level_module.encoder.parameters():
        p.requires_grad_(False)
    return model


def shared_trunk_backbone(trunk):
    """Mask2Former's backbone slot filled with our CLIP's timm ConvNeXt trunk: the same module (frozen), held by
    reference so it is neither registered twice nor switched to train mode by Mask2Former."""
    from types import SimpleNamespace

    import torch

    class SharedTrunk(torch.nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self._trunk = (trunk,)

        def forward(self, pixel_values):
            x = self._trunk[0].stem(pixel_values)
            maps = []
            for stage in self._trunk[0].stages:
                x = stage(x)
                maps.append(x)
            return SimpleNamespace(feature_maps=maps)

    return SharedTrunk()


def profile_loss_path(model, imgs, masks, labels, steps: int) -> dict:
    """Medians (ms) of the decoder forward (all prediction sets), the criterion forward, the matcher alone, and
    decoder + criterion forward and backward, on fixed (detached) pixel-decoder features."""
    import torch
    model.train()
    mean = torch.tensor([122.7709383, 116.7460125, 104.09373615]).view(1, 3, 1, 1)
    std = torch.tensor([68.5005327, 66.6321579, 70.32316305]).view(1, 3, 1, 1)
    with torch.no_grad():
        feats = model.extract_feat((imgs.float() - mean) / std)
    targets = [dict(labels=lab, masks=m) for lab, m in zip(labels, masks)]
    detached = model.decode(feats, 'train')
    detached = dict(pred_logits=detached['pred_logits'].detach(), pred_masks=detached['pred_masks'].detach(),
                    aux_outputs=[{k: v.detach() for k, v in a.items()} for a in detached['aux_outputs']])
    sets = [detached] + detached['aux_outputs']

    def fwd_bwd():
        losses = model.criterion(model.decode(feats, 'train'), targets)
        sum(losses.values()).backward()

    pieces = dict(decoder_forward=lambda: model.decode(feats, 'train'),
                  criterion_forward=lambda: model.criterion(detached, targets),
                  matcher_all_sets=lambda: [model.criterion.matcher(o, targets) for o in sets],
                  decoder_and_criterion_forward_backward=fwd_bwd)
    out = {}
    for name, fn in pieces.items():
        for _ in range(2):
            fn()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = round(statistics.median(times) * 1000, 2)
    return out


def main(argv=None) -> dict:
    args = _parse(argv)
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from mmengine.structures import InstanceData

    from ovseg.structures import SegDataSample

    ours, cfg = build_ours(args.config, args.num_classes)
    sizes = ours_sizes(cfg)
    hf = build_mask2former(sizes, args.num_classes)
    if args.hf_backbone == 'same':
        hf.model.pixel_level_module.encoder = shared_trunk_backbone(ours.backbone.clip_model.visual.trunk)
    imgs, masks, labels = _synthetic_batch(args.batch, args.size, args.num_classes)

    def ours_batch():
        samples = []
        for m, lab in zip(masks, labels):
            s = SegDataSample(
                metainfo=dict(img_shape=(args.size, args.size), ori_shape=(args.size, args.size)))
            s.gt_instances = InstanceData(masks=m.clone(), labels=lab.clone())
            samples.append(s)
        return dict(inputs=list(imgs), data_samples=samples)

    ours_opt = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=1e-4)
    hf_opt = torch.optim.AdamW([p for p in hf.parameters() if p.requires_grad], lr=1e-4)
    mean = torch.tensor([122.7709383, 116.7460125, 104.09373615]).view(1, 3, 1, 1)
    std = torch.tensor([68.5005327, 66.6321579, 70.32316305]).view(1, 3, 1, 1)

    def ours_train():
        ours.train()
        data = ours.data_preprocessor(ours_batch(), True)
        losses = ours(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()

    def hf_train():
        hf.train()
        x = (imgs.float() - mean) / std
        out = hf(pixel_values=x, mask_labels=[m.float() for m in masks], class_labels=list(labels))
        hf_opt.zero_grad()
        out.loss.backward()
        hf_opt.step()

    def ours_infer():
        ours.eval()
        with torch.no_grad():
            data = ours.data_preprocessor(ours_batch(), False)
            ours(**data, mode='predict')

    def hf_infer():
        hf.eval()
        with torch.no_grad():
            x = (imgs.float() - mean) / std
            out = hf(pixel_values=x)
            from transformers import Mask2FormerImageProcessor
            proc = Mask2FormerImageProcessor()
            proc.post_process_panoptic_segmentation(out,
                                                    threshold=0.0,
                                                    overlap_mask_area_threshold=0.8,
                                                    target_sizes=[(args.size, args.size)] * args.batch)

    results = {}
    for phase, (fo, fh) in dict(train=(ours_train, hf_train), inference=(ours_infer, hf_infer)).items():
        t_o, t_h = [], []
        for i in range(args.warmup + args.steps):
            for fn, acc in ((fo, t_o), (fh, t_h)) if i % 2 == 0 else ((fh, t_h), (fo, t_o)):
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if i >= args.warmup:
                    acc.append(dt)
        mo, mh = statistics.median(t_o), statistics.median(t_h)
        results[phase] = dict(fcclip_s=round(mo, 4), mask2former_s=round(mh, 4), ratio=round(mo / mh, 3))
    n_o = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    n_h = sum(p.numel() for p in hf.parameters() if p.requires_grad)
    if args.profile:
        results['loss_path_ms'] = profile_loss_path(ours, imgs, masks, labels, args.steps)
    results['setup'] = dict(batch=args.batch, hf_backbone=args.hf_backbone,
                            size=args.size,
                            threads=args.threads,
                            steps=args.steps,
                            trainable_params_fcclip=n_o,
                            trainable_params_mask2former=n_h,
                            **sizes)
    print(f"FC-CLIP tiny vs transformers Mask2Former (CPU, {args.threads} threads, batch {args.batch}, "
          f"{args.size}x{args.size}, median of {args.steps})")
    print(f"  sizes: {sizes}")
    print(f"  trainable params: FC-CLIP {n_o / 1e6:.2f}M, Mask2Former {n_h / 1e6:.2f}M")
    print(f"  Mask2Former backbone: {args.hf_backbone}")
    for phase in ('train', 'inference'):
        r = results[phase]
        print(f"  {phase:9s}: FC-CLIP {r['fcclip_s'] * 1000:7.1f} ms/batch   Mask2Former "
              f"{r['mask2former_s'] * 1000:7.1f} ms/batch   ratio (ours/theirs) {r['ratio']:.2f}")
    for name, ms in results.get('loss_path_ms', {}).items():
        print(f'  loss path, ours: {name:40s} {ms:7.2f} ms')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
