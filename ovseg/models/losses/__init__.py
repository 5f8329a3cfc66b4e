"""Hungarian matcher and Mask2Former set criterion."""
from .matcher import HungarianMatcher, batch_dice_cost, batch_sigmoid_ce_cost
from .set_criterion import SetCriterion, dice_loss, sigmoid_ce_loss

__all__ = ['HungarianMatcher', 'SetCriterion', 'batch_dice_cost', 'batch_sigmoid_ce_cost', 'dice_loss',
           'sigmoid_ce_loss']
