"""Loading a checkpoint for conversion must not shrink the process-wide allow-list of mmengine types."""
import numpy as np
import torch

import ovseg  # noqa: F401  (registers the allow-list)
from ovseg.models.utils.checkpoint_convert import safe_load_checkpoint


def test_mmengine_style_checkpoint_still_loads_after_a_conversion_load(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'message_hub': {'log': np.arange(3.0)}}, path)
    assert np.array_equal(safe_load_checkpoint(str(path))['message_hub']['log'], np.arange(3.0))
    again = torch.load(path, map_location='cpu', weights_only=True)  # as mmengine's --resume does
    assert np.array_equal(again['message_hub']['log'], np.arange(3.0))
