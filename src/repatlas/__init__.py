"""repatlas: how width, depth, data size and seed shape what a network learns."""

__version__ = "0.1.0"
