"""The naive merge, defined per pixel (naive_merge.py docstring), on hand-built maps."""
import torch
from mmengine.structures import InstanceData

from projects.inout_vocab.inout_vocab.naive_merge import merge_instances, merge_panoptic, merge_semantic

# classes 0, 1 in-vocabulary (stuff), 2, 3 out-of-vocabulary (deleted things)
OUT = torch.tensor([False, False, True, True])


def test_merge_panoptic_keeps_in_vocab_and_pastes_out_vocab_on_free_pixels():
    ft = torch.tensor([[1, 1, 2, 2],
                       [1, 1, 3, 3],
                       [0, 0, 3, 3]])
    ft_segs = [dict(id=1, category_id=0, isthing=False), dict(id=2, category_id=1, isthing=False),
               dict(id=3, category_id=2, isthing=True)]  # the fine-tuned model's out-vocab guess: dropped
    zs = torch.tensor([[5, 5, 5, 0],
                       [7, 7, 7, 7],
                       [7, 7, 9, 9]])
    zs_segs = [dict(id=5, category_id=3, isthing=True),  # out-vocab but every pixel taken: vanishes
               dict(id=7, category_id=2, isthing=True),  # out-vocab: pasted on free pixels only
               dict(id=9, category_id=0, isthing=False)]  # in-vocab class of the zero-shot model: ignored
    pan, segs = merge_panoptic(ft, ft_segs, zs, zs_segs, OUT)
    assert pan.tolist() == [[1, 1, 2, 2],
                            [1, 1, 3, 3],
                            [3, 3, 0, 0]]
    assert [(s['id'], s['category_id']) for s in segs] == [(1, 0), (2, 1), (3, 2)]
    assert segs[2]['isthing'] is True


def test_merge_semantic_per_pixel_rule():
    ft = torch.tensor([[0, 1, 2, 3]])
    zs = torch.tensor([[3, 3, 0, 2]])
    # in-vocab ft labels stay; ft out-vocab pixels take zs where zs is out-vocab, else keep ft
    assert merge_semantic(ft, zs, OUT).tolist() == [[0, 1, 2, 2]]


def test_merge_instances_by_class():
    ft = InstanceData(masks=torch.ones(2, 2, 2, dtype=torch.bool), labels=torch.tensor([0, 2]),
                      scores=torch.tensor([0.9, 0.8]))
    zs = InstanceData(masks=torch.zeros(2, 2, 2, dtype=torch.bool), labels=torch.tensor([3, 1]),
                      scores=torch.tensor([0.7, 0.6]))
    merged = merge_instances(ft, zs, OUT)
    assert merged.labels.tolist() == [0, 3] and merged.scores.tolist() == [0.8999999761581421, 0.699999988079071]
