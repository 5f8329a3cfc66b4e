"""Installs the `ovseg` core package; projects live under `projects/` and are loaded via `custom_imports`."""
from setuptools import find_packages, setup

CORE = [
    # torch/torchvision come from the machine's wheel store (see Makefile); any 2.x >= 2.6 works.
    'torch>=2.6',
    'torchvision',
    'mmengine>=0.10.6,<0.11',  # 0.10.6 fixed the Adafactor double registration on torch >= 2.5
    'mmcv-lite>=2.0',  # transforms, image io, cnn bricks; mmcv full cannot build on torch >= 2.13
    'numpy',
    'pycocotools',
    'scipy',
    'pillow',
    'opencv-python-headless',
    'open_clip_torch>=2.20',
    'timm',
    'tensorboard',
    'matplotlib',
    'setuptools<82',  # mmengine 0.10.7 still imports pkg_resources
]

EXTRAS = {
    # `panopticapi-lite` pins numpy<2 although its code runs on numpy 2: the Makefile installs it --no-deps.
    # tests also exercise the NSS backends (tiny random-init SAM, tiny GLIGEN) and transformers' references
    # peft: LoRA wrappers (ovseg/models/peft), tested against peft's own merge
    'dev': ['pytest>=7', 'pytest-xdist', 'cityscapesscripts', 'transformers>=4.40', 'segment-anything',
            'diffusers>=0.30', 'requests', 'peft>=0.17', 'ruff>=0.6', 'hydra-core>=1.3.2', 'iopath>=0.1.10',
            'pycocoevalcap>=1.2'],
    # Novel Sample Synthesis backends (real models load from local paths only).
    'nss': ['segment-anything', 'transformers>=4.40', 'diffusers>=0.30', 'requests'],
    # hydra-core/iopath: runtime deps of Meta's `sam2` (its own minimums), which the Makefile installs --no-deps
    # pycocoevalcap: CIDEr / METEOR of region captions (METEOR needs java on the PATH)
    'sa2va': ['transformers>=4.40', 'peft>=0.17', 'hydra-core>=1.3.2', 'iopath>=0.1.10', 'pycocoevalcap>=1.2'],
}

setup(
    name='ovseg',
    version='0.1.0',
    description='Config-driven toolkit for open-vocabulary segmentation (FC-CLIP, DreamMask, SEEM, Sa2VA).',
    python_requires='>=3.11',
    packages=find_packages(include=['ovseg', 'ovseg.*']),
    package_data={'ovseg': ['datasets/vocabularies/*.txt', 'datasets/vocabularies/*.json']},
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={'console_scripts': ['ovseg-toyscenes=ovseg.datasets.toy_scenes:cli']},
)
