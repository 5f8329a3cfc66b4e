"""SEEM v1 on the ovseg core (issue 11): decoder, segmentor, grounding and spatial losses; registered on import.

Imported by configs through ``custom_imports=dict(imports=['projects.seem_ft.seem_ft'])``. The SEEM data
pipeline (``seem_ft.data``, written separately) is imported too when it is present. Fine-tuning strategies
(``strategies``: decoder adapters) and run options (``run_options``: batch-size check, evaluation at start) are
registered here too.
"""
import importlib.util

from .grounding_loss import SEEMGroundingLoss, normalize_emb  # noqa: F401
from .interactive_metric import InteractiveNoCMetric, number_of_clicks  # noqa: F401
from .run_options import EvaluateAtStartHook, TrainBatchSizeCheckHook, check_train_batch_size  # noqa: F401
from .seem import (  # noqa: F401
    SEEM,
    SEEM_CRITERION,
    SEEM_DATA_PREPROCESSOR,
    SEEM_PIXEL_MEAN,
    SEEM_PIXEL_STD,
    SEEM_SPATIAL_LOSS,
    SEEM_SPATIAL_TRAINING,
    SEEM_TEST_CFG,
    groundings,
)
from .seem_decoder import SEEMDecoder, SEEMQueryLayout, rand_sample_prompt_points, seem_self_attn_mask  # noqa: F401
from .spatial_loss import SEEMSpatialLoss  # noqa: F401
from .spatial_prompts import draw_prompt, next_click_prompts, sample_spatial_prompts  # noqa: F401
from .strategies import SPATIAL_PARAMS, SEEMDecoderAdapters, count_trainable, strategy_summary  # noqa: F401

if importlib.util.find_spec(f'{__name__}.data') is not None:  # the data helper's package, once it exists
    importlib.import_module(f'{__name__}.data')
