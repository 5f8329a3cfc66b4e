"""Hungarian matcher and Mask2Former set criterion (point-sampled mask losses, deep supervision)."""
from ovseg.models.utils.point_sample import (calculate_uncertainty, get_uncertain_point_coords_with_randomness,
                                             point_sample)

from .matcher import HungarianMatcher, batch_dice_cost, batch_sigmoid_ce_cost
from .set_criterion import Mask2FormerCriterion, SetCriterion, dice_loss, pad_target_masks, sigmoid_ce_loss

__all__ = ['HungarianMatcher', 'Mask2FormerCriterion', 'SetCriterion', 'batch_dice_cost', 'batch_sigmoid_ce_cost',
           'calculate_uncertainty', 'dice_loss', 'get_uncertain_point_coords_with_randomness',
           'pad_target_masks', 'point_sample', 'sigmoid_ce_loss']
