"""Methods and their per-dataset settings (SPEC sections 1, 3, 4) and the derived default."""
from jaxsc._src.methods.lrsc import LRSCPreset
from jaxsc._src.methods.out_of_sample import large_scale_preset
from jaxsc._src.methods.presets import METHODS, PRESETS, Method, Preset, derive_preset, get_preset
from jaxsc._src.methods.sai import SAI_PRESETS, SAIPreset, get_sai_preset

__all__ = ["LRSCPreset", "METHODS", "Method", "PRESETS", "Preset", "SAIPreset", "SAI_PRESETS", "derive_preset",
           "get_preset", "get_sai_preset", "large_scale_preset"]
