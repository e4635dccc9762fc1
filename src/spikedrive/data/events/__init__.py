"""Event streams: readers and writers for the real camera formats, representations, simulator."""
