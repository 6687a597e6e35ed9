"""The jitted training loop and the objectives it trains."""
from jaxsc._src.methods.self_expressive import (ReconstructionObjective, SelfExpressiveObjective,
                                                init_self_expressive_params, ridge_start, self_expressive_forward)
from jaxsc._src.train.optimizers import CompactAdamState, adam_compact
from jaxsc._src.train.loop import (EarlyStop, TrainResult, TrainState, compile_train_step, plan_train_memory,
                                   sample_matrix_shardings, shard_sample_matrices, train, train_step)
from jaxsc._src.train.memory import MemoryPlan, available_memory, check_train_memory

__all__ = ["CompactAdamState", "EarlyStop", "MemoryPlan", "ReconstructionObjective", "SelfExpressiveObjective",
           "TrainResult", "TrainState", "adam_compact", "available_memory", "check_train_memory", "compile_train_step",
           "init_self_expressive_params", "plan_train_memory", "ridge_start", "sample_matrix_shardings",
           "self_expressive_forward", "shard_sample_matrices", "train", "train_step"]
