"""Methods and their per-dataset settings (SPEC sections 1, 3, 4) and the derived default."""
from jaxsc._src.methods.presets import METHODS, PRESETS, Method, Preset, derive_preset, get_preset

__all__ = ["METHODS", "PRESETS", "Method", "Preset", "derive_preset", "get_preset"]
