"""The training loop shared by every method, and the DSC objectives."""
from jaxsc._src.methods.dsc import DSCObjective, ReconstructionObjective, dsc_forward, init_dsc_params
from jaxsc._src.train.loop import EarlyStop, TrainResult, TrainState, train, train_step

__all__ = ["DSCObjective", "EarlyStop", "ReconstructionObjective", "TrainResult", "TrainState", "dsc_forward",
           "init_dsc_params", "train", "train_step"]
