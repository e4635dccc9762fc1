"""Datasets reading the real on-disk layouts, and synthetic generators writing the real formats."""
