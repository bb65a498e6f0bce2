"""The few ONNX protobuf messages an encoder graph needs, written in the protobuf wire format.

Why not the ``onnx`` package: importing it costs about a second and a half here (most of it
its ``ml_dtypes`` dependency) and 30 MB installed, to serialise a graph of about 200 nodes
once per process. The messages and field numbers below are those of ``onnx/onnx.proto``
(stable since IR version 3); tests/test_minilm.py parses the output with the ``onnx`` package
(a dev dependency) and runs its checker on it.

Wire format: each field is a key ``(number << 3) | wire type`` as a varint, then a varint
(type 0), 4 little-endian bytes (type 5) or a length-prefixed payload (type 2: strings, bytes
and nested messages).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

FLOAT = 1  # TensorProto.DataType
INT64 = 7
_ATTRIBUTE_FLOAT, _ATTRIBUTE_INT, _ATTRIBUTE_INTS = 1, 2, 7  # AttributeProto.AttributeType
_DTYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s as two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _number(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def _text(field: int, value: str) -> bytes:
    return _bytes(field, value.encode())


def _messages(field: int, values: Iterable[bytes]) -> bytes:
    return b"".join(_bytes(field, v) for v in values)


def attribute(name: str, value: float | int | Sequence[int]) -> bytes:
    """An AttributeProto: a float, an int or a list of ints."""
    if isinstance(value, float):
        body = _varint(2 << 3 | 5) + struct.pack("<f", value)
        kind = _ATTRIBUTE_FLOAT
    elif isinstance(value, int):
        body, kind = _number(3, value), _ATTRIBUTE_INT
    else:
        body, kind = b"".join(_number(8, v) for v in value), _ATTRIBUTE_INTS
    return _text(1, name) + body + _number(20, kind)


def node(
    op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attributes: object
) -> bytes:
    """A NodeProto of the default domain."""
    return (
        b"".join(_text(1, name) for name in inputs)
        + b"".join(_text(2, name) for name in outputs)
        + _text(3, outputs[0])
        + _text(4, op_type)
        + _messages(5, (attribute(k, v) for k, v in attributes.items()))  # type: ignore[arg-type]
    )


def tensor(name: str, array: npt.NDArray[np.generic]) -> bytes:
    """A TensorProto holding ``array`` (float32 or int64) as little-endian raw data."""
    data = np.ascontiguousarray(array)
    kind = _DTYPES[data.dtype]
    dims = b"".join(_number(1, size) for size in data.shape)
    return (
        dims
        + _number(2, kind)
        + _text(8, name)
        + _bytes(9, data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes())
    )


def value_info(name: str, elem_type: int, shape: Sequence[int | str]) -> bytes:
    """A ValueInfoProto: a tensor's name, element type and shape (a str names a free dim)."""
    dims = b"".join(_bytes(1, _text(2, d) if isinstance(d, str) else _number(1, d)) for d in shape)
    tensor_type = _number(1, elem_type) + _bytes(2, dims)
    return _text(1, name) + _bytes(2, _bytes(1, tensor_type))


def model(
    name: str,
    nodes: Sequence[bytes],
    initializers: Sequence[bytes],
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    *,
    ir_version: int,
    opset: int,
) -> bytes:
    """A ModelProto around one GraphProto, importing ``opset`` of the default domain."""
    graph = (
        _messages(1, nodes)
        + _text(2, name)
        + _messages(5, initializers)
        + _messages(11, inputs)
        + _messages(12, outputs)
    )
    return (
        _number(1, ir_version)
        + _text(2, "memwarden")
        + _bytes(7, graph)
        + _bytes(8, _text(1, "") + _number(2, opset))
    )
