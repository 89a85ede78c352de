"""The package version, in a module of its own so that any part of edgeopt can read it without
importing the package's __init__ (which imports every part)."""
__version__ = "0.1.0"
