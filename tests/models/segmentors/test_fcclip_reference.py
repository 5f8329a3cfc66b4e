"""FC-CLIP / DreamMask outputs on fixed weights and inputs equal the stored references (≤ 1e-6).

The references were written before the core refactor (``python -m tests.helpers.fcclip_reference --write``);
tensor-mode logits and masks, predictions (semantic, panoptic segments, instances) and every loss term of
the tiny ConvNeXt model (in-vocab only and with the geometric ensemble), the R50 model and the tiny DreamMask
model (with ``loss_sra``) must stay as they were.
"""
import numpy as np
import pytest

from tests.helpers.fcclip_reference import CASES, DATA_DIR, build_model, run_case


@pytest.mark.parametrize('case', sorted(CASES))
def test_outputs_match_stored_reference(case):
    ref = np.load(DATA_DIR / f'{case}.npz')
    got = run_case(case, build_model(case))
    assert sorted(got) == sorted(ref.files)
    for key in ref.files:
        expected, actual = ref[key], got[key]
        assert actual.shape == expected.shape, key
        if np.issubdtype(expected.dtype, np.integer):
            np.testing.assert_array_equal(actual, expected, err_msg=key)
        else:
            np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6, err_msg=key)
