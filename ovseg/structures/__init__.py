"""Data structures exchanged between datasets, models and metrics."""
from .seg_data_sample import SegDataSample

__all__ = ['SegDataSample']
