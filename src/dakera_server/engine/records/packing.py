"""Representations: checked, packed into bytes (f32 / f16 / i8) and unpacked again.

``i8`` is symmetric per-row quantisation: each row stores one float32 scale (its largest
absolute value / 127) and 127-step integers, so a row round-trips within 0.4% of its largest
component; ``f16`` keeps ~3 significant digits; ``f32`` is exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.errors import InvalidInput

__all__ = ["DTYPES", "KINDS", "MAX_DIM", "MAX_REPRESENTATIONS", "Packed", "pack", "unpack"]

KINDS = ("dense", "token_multivector", "patch_multivector")
DTYPES = ("f32", "f16", "i8")
MAX_REPRESENTATIONS = 16
MAX_DIM = 8192
NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-.]{0,63}$")


@dataclass(frozen=True)
class Packed:
    """One representation in stored form: its manifest and its bytes."""

    name: str
    kind: str
    dtype: str
    dim: int
    count: int
    model: str
    data: bytes

    def manifest(self) -> dict[str, Any]:
        """What a record read shows without vectors."""
        return {
            "name": self.name,
            "kind": self.kind,
            "dim": self.dim,
            "count": self.count,
            "dtype": self.dtype,
            "bytes": len(self.data),
            "model": self.model,
        }


def _matrix(value: Any, where: str) -> npt.NDArray[np.float32]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"'{where}.vectors' must be a non-empty list of vectors")
    width = None
    for i, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise InvalidInput(f"'{where}.vectors[{i}]' must be a non-empty list of numbers")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise InvalidInput(f"'{where}.vectors' rows must all have {width} values")
    try:
        matrix = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidInput(f"'{where}.vectors' must hold only numbers") from None
    if not np.isfinite(matrix).all():
        raise InvalidInput(f"'{where}.vectors' must hold finite numbers")
    if matrix.shape[1] > MAX_DIM:
        raise InvalidInput(f"'{where}.vectors' rows are longer than {MAX_DIM} values")
    return matrix


def pack(value: Any, where: str) -> Packed:
    """Check one representation of a request and pack it."""
    if not isinstance(value, dict):
        raise InvalidInput(f"'{where}' must be an object")
    name = value.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == "dense":
        raise InvalidInput(
            f"'{where}.name' must be 1-64 letters, digits, '_', '-' or '.', and not 'dense'"
        )
    kind = value.get("kind", "dense")
    if kind not in KINDS:
        raise InvalidInput(f"'{where}.kind' must be one of {', '.join(KINDS)}")
    dtype = value.get("store_as", "f32")
    if dtype not in DTYPES:
        raise InvalidInput(f"'{where}.store_as' must be one of {', '.join(DTYPES)}")
    model = value.get("model") or ""
    if not isinstance(model, str) or len(model) > 128:
        raise InvalidInput(f"'{where}.model' must be a string of at most 128 characters")
    matrix = _matrix(value.get("vectors"), where)
    if kind == "dense" and matrix.shape[0] != 1:
        raise InvalidInput(f"'{where}' is dense: it takes exactly one vector")
    if dtype == "f32":
        data = matrix.astype("<f4").tobytes()
    elif dtype == "f16":
        data = matrix.astype("<f2").tobytes()
    else:
        scales = np.abs(matrix).max(axis=1) / 127.0
        scales[scales == 0] = 1.0
        quantised = np.clip(np.rint(matrix / scales[:, None]), -127, 127).astype(np.int8)
        data = scales.astype("<f4").tobytes() + quantised.tobytes()
    return Packed(name, kind, dtype, int(matrix.shape[1]), int(matrix.shape[0]), model, data)


def unpack(packed: Packed) -> list[list[float]]:
    """The rows of a stored representation as floats."""
    rows, dim = packed.count, packed.dim
    if packed.dtype == "f32":
        matrix = np.frombuffer(packed.data, dtype="<f4").reshape(rows, dim)
    elif packed.dtype == "f16":
        matrix = np.frombuffer(packed.data, dtype="<f2").reshape(rows, dim).astype(np.float32)
    else:
        scales = np.frombuffer(packed.data[: rows * 4], dtype="<f4")
        ints = np.frombuffer(packed.data[rows * 4 :], dtype=np.int8).reshape(rows, dim)
        matrix = ints.astype(np.float32) * scales[:, None]
    return [[float(x) for x in row] for row in matrix]
