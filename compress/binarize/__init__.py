"""Binarization: binary layers (compress.binarize.layers) and the model transforms that use them."""

from compress.binarize.layers import BINARY_TYPES, BinaryConv2d, BinaryLinear, from_float, sign, ste_sign

__all__ = ["BINARY_TYPES", "BinaryConv2d", "BinaryLinear", "from_float", "sign", "ste_sign"]

from compress.binarize.transform import binarize_model, default_layers  # noqa: E402  (registers the transform)

__all__ += ["binarize_model", "default_layers"]
