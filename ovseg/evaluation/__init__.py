"""Metrics computed in memory during validation (PQ, mIoU, mask AP, ...)."""
from .metrics import *  # noqa: F401,F403
