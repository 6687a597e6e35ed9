"""Per-dataset DSC settings.

Fine-tuning weights, epochs and post-processing follow the DSC-Net reference scripts (SPEC section 1), in
jaxsc's convention of plain sums of squares (w_rec / w_reg / w_se). ``data_scale`` multiplies the [0, 1]
images before training: the reference scripts trained ORL and EYaleB on raw 0..255 pixel values, and the
reference pretrained weights and loss weights for those datasets assume that scale.

Pretraining (not part of the reference fine-tune scripts) is jaxsc's own: Adam 1e-3 on mini-batches of 128,
with the step counts below, fixed before any run and not tuned on labels.

A dataset without a preset gets :func:`derive_preset` from its image size.
"""
from __future__ import annotations

import dataclasses

from jaxsc._src.cluster.pipeline import PostConfig


@dataclasses.dataclass(frozen=True)
class DSCPreset:
    """Architecture, loss weights, optimisation and cluster-stage settings of one DSC run."""

    kernels: tuple[int, ...]
    channels: tuple[int, ...]
    w_rec: float = 1.0
    w_reg: float = 1.0
    w_se: float = 75.0
    finetune_steps: int = 100
    finetune_lr: float = 1e-3
    pretrain_steps: int = 3000
    pretrain_lr: float = 1e-3
    pretrain_batch: int | None = 128
    coef_init: float = 1e-8
    data_scale: float = 1.0
    zero_diagonal: bool = False
    early_stop: bool = False
    post: PostConfig = PostConfig()

    def replace(self, **changes) -> "DSCPreset":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown preset fields {sorted(unknown)}; known: "
                             f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)


def _eyaleb(n_subjects: int = 38) -> DSCPreset:
    return DSCPreset(
        kernels=(5, 3, 3), channels=(10, 20, 30), w_rec=1.0, w_reg=1.0, w_se=10 ** (n_subjects / 10 - 3),
        finetune_steps=50 + 25 * n_subjects, coef_init=1e-4, data_scale=255.0, pretrain_steps=3000,
        post=PostConfig(threshold=max(0.4 - 0.1 * (n_subjects - 1) / 10, 0.1), subspace_dim=10, power=3.5))


PRESETS: dict[str, DSCPreset] = {
    "coil20": DSCPreset(kernels=(3,), channels=(15,), w_rec=1.0, w_reg=1.0, w_se=75.0, finetune_steps=40,
                        pretrain_steps=5000,
                        post=PostConfig(threshold=0.04, subspace_dim=12, power=8.0, add_identity=True)),
    "coil100": DSCPreset(kernels=(5,), channels=(50,), w_rec=1.0, w_reg=1.0, w_se=15.0, finetune_steps=120,
                         pretrain_steps=5000,
                         post=PostConfig(threshold=0.04, subspace_dim=12, power=8.0, add_identity=True)),
    "orl": DSCPreset(kernels=(3, 3, 3), channels=(3, 3, 5), w_rec=1.0, w_reg=2.0, w_se=0.2, finetune_steps=700,
                     data_scale=255.0, pretrain_steps=5000, pretrain_batch=100,
                     post=PostConfig(threshold=0.2, subspace_dim=3, power=1.0)),
    "eyaleb": _eyaleb(38),
    # Not in the DSC-Net scripts: RGRL's MNIST encoder (Table 3), COIL20's loss weights, RGRL's MNIST post
    # settings; fixed before any run.
    "mnist-1000": DSCPreset(kernels=(5, 3, 3), channels=(15, 10, 5), w_rec=1.0, w_reg=1.0, w_se=75.0,
                            finetune_steps=100, pretrain_steps=5000,
                            post=PostConfig(threshold=0.12, subspace_dim=4, power=5.0)),
}


def derive_preset(image_shape: tuple[int, ...]) -> DSCPreset:
    """Documented defaults for a dataset without a preset.

    - images with a side <= 16: one 3x3 layer with 10 channels; otherwise RGRL's three-layer
      5x5@15, 3x3@10, 3x3@5 encoder;
    - COIL20's loss weights 1 / 1 / 75 and 100 fine-tune steps;
    - 2000 pretraining steps;
    - post: threshold 0.1, subspace_dim 8, power 4 (``subspace_dim * K + 1`` is capped at n - 1).
    """
    if len(image_shape) != 3:
        raise ValueError(f"a DSC preset needs (H, W, C) images, got shape {image_shape}")
    small = min(image_shape[:2]) <= 16
    kernels, channels = ((3,), (10,)) if small else ((5, 3, 3), (15, 10, 5))
    return DSCPreset(kernels=kernels, channels=channels, finetune_steps=100, pretrain_steps=2000,
                     post=PostConfig(threshold=0.1, subspace_dim=8, power=4.0))


def get_preset(name: str | None, image_shape: tuple[int, ...]) -> DSCPreset:
    """The named preset, or :func:`derive_preset` when ``name`` is ``None``."""
    if name is None:
        return derive_preset(image_shape)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)} (or None to derive one)")
    return PRESETS[name]
