"""Methods and their per-dataset settings (SPEC sections 1, 3, 4) and the derived default."""
from jaxsc._src.methods.presets import METHODS, PRESETS, Method, Preset, derive_preset, get_preset
from jaxsc._src.methods.sai import SAI_PRESETS, SAIPreset, get_sai_preset

__all__ = ["METHODS", "PRESETS", "SAI_PRESETS", "Method", "Preset", "SAIPreset", "derive_preset", "get_preset",
           "get_sai_preset"]
