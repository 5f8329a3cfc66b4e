"""Placeholder replaced by the data helper: SegDataPreprocessor."""
