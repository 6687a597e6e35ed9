"""DSC-Net's pretrained autoencoder weights (``pretrained_dscnet/<name>.pkl``) as jaxsc parameters.

The files are legacy ``torch.save`` state dicts (read without torch by :mod:`torch_pickle`): Conv2d weights
are ``(out, in, kH, kW)`` and ConvTranspose2d weights ``(in, out, kH, kW)``; both become the HWIO kernel of
the forward convolution by ``transpose(2, 3, 1, 0)``.

Orientation: the reference scripts for COIL20, COIL100 and ORL reshaped the MATLAB column-major vectors in
C order, so they trained on transposed images; jaxsc loads images upright. For square images with equal
"SAME" padding on both axes, convolving transposed images with K equals transposing the result of convolving
upright images with K^T, so for those files the kernels' two spatial axes are swapped
(``upright_kernels=True``). The EYaleB script loaded upright 48x42 images and needs no swap.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jaxsc._src.data.files import DataFile, locate
from jaxsc._src.models.torch_pickle import load_legacy_torch

_FOLDER = "pretrained_dscnet"
_XG = "https://raw.githubusercontent.com/XifengGuo/DSC-Net/021949baa55aaed0d66955f61760e2185771a608/pretrained_weights_original"


def _entry(file: str, what: str, sha256: str, upright: bool) -> tuple[DataFile, bool]:
    return DataFile(_FOLDER, file, f"DSC-Net {what} autoencoder, legacy torch.save state dict", sha256,
                    f"{_XG}/{file}"), upright


# name -> (file, whether the reference trained on transposed images and the kernels must be swapped)
REFERENCE_WEIGHTS = {
    "coil20": _entry("coil20.pkl", "COIL20", "3d33dc1e8ee7b032fc0cab883e4c4b2312861418f57be5ac8e22e5fe38cff194", True),
    "coil100": _entry("coil100.pkl", "COIL100", "243073106d0269debf442643691e9bbc183f36ab8fca1a37131ed0b0ad51533a",
                      True),
    "orl": _entry("orl.pkl", "ORL", "18b5aee470e9b26dcc2de5a81b8cf725c60654ef69ec7c2375e4641c4202ea7e", True),
    "eyaleb": _entry("yaleb.pkl", "EYaleB (48x42)", "7700a23a02b1ca1935734b01538f8871478cb2ff9ac6b96070873cf15f8e4c71",
                     False),
}


def convert_state_dict(state: dict[str, np.ndarray], upright_kernels: bool) -> dict:
    """A DSC-Net torch state dict -> ``{'params': ...}`` of :class:`ConvAutoencoder`."""
    n_layers = sum(1 for k in state if k.startswith("encoder.conv") and k.endswith(".weight"))
    if n_layers == 0:
        raise ValueError(f"no encoder.conv*.weight tensors in the state dict (keys: {sorted(state)})")
    params = {}

    def kernel(w):
        w = np.asarray(w, np.float32).transpose(2, 3, 1, 0)
        return w.transpose(1, 0, 2, 3) if upright_kernels else w

    for i in range(n_layers):
        params[f"enc{i}_kernel"] = kernel(state[f"encoder.conv{i + 1}.weight"])
        params[f"enc{i}_bias"] = np.asarray(state[f"encoder.conv{i + 1}.bias"], np.float32)
        params[f"dec{i}_kernel"] = kernel(state[f"decoder.deconv{i + 1}.weight"])
        params[f"dec{i}_bias"] = np.asarray(state[f"decoder.deconv{i + 1}.bias"], np.float32)
    return {"params": params}


def conv_architecture(params: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(kernels, channels)`` of :class:`ConvAutoencoder` parameters, read from the encoder's kernel shapes."""
    n_layers = sum(1 for k in params if k.startswith("enc") and k.endswith("_kernel"))
    shapes = [params[f"enc{i}_kernel"].shape for i in range(n_layers)]
    return tuple(int(shape[0]) for shape in shapes), tuple(int(shape[3]) for shape in shapes)


def load_reference_weights(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """DSC-Net's pretrained autoencoder for ``name`` (coil20, coil100, orl, eyaleb) as flax variables."""
    if name not in REFERENCE_WEIGHTS:
        raise ValueError(f"no DSC-Net reference weights for {name!r}; available: {sorted(REFERENCE_WEIGHTS)}")
    spec, upright = REFERENCE_WEIGHTS[name]
    return convert_state_dict(load_legacy_torch(Path(locate(spec, data_dir))), upright)
