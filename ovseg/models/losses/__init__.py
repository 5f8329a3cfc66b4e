"""Hungarian matcher, the set criterion and its named loss terms (Mask2Former CE / mask BCE / dice)."""
from .mask_classification_losses import (
                                         ClassCELoss,
                                         MaskBCELoss,
                                         MaskDiceLoss,
                                         PointSampledMaskLoss,
                                         SetLossTerm,
                                         dice_loss,
                                         sigmoid_ce_loss,
)
from .matcher import HungarianMatcher, batch_dice_cost, batch_sigmoid_ce_cost
from .set_criterion import MASK2FORMER_LOSSES, MatchedPredictions, SetCriterion, pad_target_masks

__all__ = ['ClassCELoss', 'HungarianMatcher', 'MASK2FORMER_LOSSES', 'MaskBCELoss', 'MaskDiceLoss', 'MatchedPredictions',
           'PointSampledMaskLoss', 'SetCriterion', 'SetLossTerm', 'batch_dice_cost', 'batch_sigmoid_ce_cost',
           'dice_loss', 'pad_target_masks', 'sigmoid_ce_loss']
