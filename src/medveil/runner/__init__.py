"""Batch processing: finding inputs, processing files, recording outcomes."""
