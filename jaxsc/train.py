"""The jitted training loop and the objectives it trains."""
from jaxsc._src.methods.self_expressive import (ReconstructionObjective, SelfExpressiveObjective,
                                                init_self_expressive_params, self_expressive_forward)
from jaxsc._src.train.optimizers import CompactAdamState, adam_compact
from jaxsc._src.train.loop import (EarlyStop, TrainResult, TrainState, shard_sample_matrices, train,
                                   train_step)

__all__ = ["CompactAdamState", "adam_compact", "EarlyStop", "ReconstructionObjective", "SelfExpressiveObjective", "TrainResult", "TrainState",
           "init_self_expressive_params", "self_expressive_forward", "shard_sample_matrices", "train", "train_step"]
