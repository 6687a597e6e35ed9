"""Per-dataset DSC settings (SPEC section 1) and the derived default."""
from jaxsc._src.methods.presets import PRESETS, DSCPreset, derive_preset, get_preset

__all__ = ["PRESETS", "DSCPreset", "derive_preset", "get_preset"]
