"""FCCLIPTransformerDecoder: official names, deep supervision, masked attention."""
import torch
from torch import nn

from ovseg.models.decoders import FCCLIPTransformerDecoder
from tests.helpers.fcclip_keys import official_entries


class StandInHead(nn.Module):
    """Same call signature as InVocabClassifier: logits from the decoder output and the text classifier."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, decoder_output, mask_features, outputs_mask, text_classifier, num_templates):
        return self.proj(decoder_output) @ text_classifier.t()


def _official():
    head = ('class_embed.', '_mask_pooling_proj.', 'logit_scale')
    entries = official_entries('convnext_large', 'sem_seg_head.predictor.')
    return {k: shape for k, (shape, _) in entries.items() if not k.startswith(head)}


def test_state_dict_matches_official_names():
    dec = FCCLIPTransformerDecoder(class_head=StandInHead(256))
    ours = {k: tuple(v.shape) for k, v in dec.state_dict().items() if not k.startswith('class_head.')}
    assert ours == _official()


def test_outputs_deep_supervision_and_gradients():
    torch.manual_seed(0)
    dec = FCCLIPTransformerDecoder(in_channels=16, hidden_dim=32, num_queries=5, nheads=4, dim_feedforward=64,
                                   dec_layers=4, mask_dim=32, class_head=StandInHead(32))
    ms = [torch.randn(2, 16, s, s) for s in (2, 4, 8)]
    mask_features = torch.randn(2, 32, 16, 16)
    text = torch.randn(7, 32)
    out = dec(ms, mask_features, text, [1] * 7)
    assert out['pred_logits'].shape == (2, 5, 7)
    assert out['pred_masks'].shape == (2, 5, 16, 16)
    assert len(out['aux_outputs']) == 4  # one prediction per layer plus the query init, minus the last
    (out['pred_logits'].sum() + out['pred_masks'].sum()).backward()
    assert dec.query_feat.weight.grad is not None and dec.input_proj[0].weight.grad is not None


def test_fully_masked_query_attends_everywhere():
    """A query whose predicted mask is empty at a level must still get finite attention output."""
    torch.manual_seed(0)
    dec = FCCLIPTransformerDecoder(in_channels=8, hidden_dim=8, num_queries=3, nheads=2, dim_feedforward=16,
                                   dec_layers=3, mask_dim=8, class_head=StandInHead(8))
    ms = [torch.randn(1, 8, s, s) for s in (2, 4, 8)]
    mask_features = torch.full((1, 8, 16, 16), -50.0)  # makes every mask logit very negative
    with torch.no_grad():
        dec.mask_embed.layers[-1].bias.fill_(1.0)
        out = dec(ms, mask_features, torch.randn(4, 8), [1] * 4)
    assert torch.isfinite(out['pred_logits']).all() and torch.isfinite(out['pred_masks']).all()
