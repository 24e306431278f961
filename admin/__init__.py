"""Device registry: a library (registry.py) and a CLI (``python -m admin``)."""
