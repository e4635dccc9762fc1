"""Data: event-camera formats, representations, the DVS simulator, datasets and generators."""
