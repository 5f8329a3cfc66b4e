"""ovseg: an MMEngine-style toolkit for open-vocabulary segmentation.

Importing the package is cheap (no torch, no mmengine): the pure computations (``ovseg.vocabulary``,
``ovseg.structures.panoptic_format``, ``ovseg.evaluation.functional``) serve command-line tools that should
start fast. mmengine's checkpoint types are allow-listed for torch's weights-only loader where mmengine is
imported anyway: ``ovseg.registry`` (every config-driven path) and ``ovseg.utils.launch.build_runner``.
"""
__version__ = '0.1.0'
