"""The package version, in a module of its own so the low layers (artifact.py) need not import the root."""

__version__ = "0.1.0"
