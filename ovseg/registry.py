"""ovseg registries: children of mmengine's roots so mmengine's Runner finds our modules.

Projects register into these same registries (``from ovseg.registry import MODELS``) and are switched on
from a config with ``custom_imports``. ``default_scope = 'ovseg'`` in the runtime config selects them.

Every config-driven path (Runner, tools, tests) imports this module, so it is also where mmengine's
checkpoint types are allow-listed for torch's weights-only loader (``--resume`` / ``load_from`` under
torch >= 2.6, see ``ovseg/utils/torch_compat.py``); ``import ovseg`` alone stays free of torch.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

from ovseg.utils.torch_compat import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['ovseg.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['ovseg.engine'])
# FlexibleRunner strategies (OVSegFSDPStrategy, ovseg/engine/fsdp.py); FUNCTIONS: mmengine's FSDP wrapper looks
# up auto_wrap_policy there under the default scope (the policies themselves are in mmengine's root, which its
# wrapper searches; this child only gives the 'ovseg' scope a node in that tree).
STRATEGIES = Registry('strategy', parent=MMENGINE_STRATEGIES, locations=['ovseg.engine'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=['ovseg.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['ovseg.engine.hooks'])
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, locations=['ovseg.engine'])

DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['ovseg.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS,
                         locations=['ovseg.datasets', 'ovseg.datasets.samplers'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, locations=['ovseg.datasets.transforms'])

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['ovseg.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['ovseg.models'])
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, locations=['ovseg.models'])
# LoRA / adapter wrappers named by the top-level ``peft`` config key (applied to a built model, not modules).
PEFT_WRAPPERS = Registry('peft wrapper', locations=['ovseg.models.peft'])

OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['ovseg.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['ovseg.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, locations=['ovseg.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['ovseg.engine'])

# Metrics are imported lazily by ``ovseg.evaluation``; the registry imports their module when a config asks.
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['ovseg.evaluation.metrics'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['ovseg.evaluation'])

VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, locations=['ovseg.visualization'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, locations=['ovseg.visualization'])
