"""GGUF tensor data -> MLX arrays: kept quantized where MLX's affine format holds the values.

MLX's affine quantization stores `value = scale * u + bias` per group of 32/64/128 values
(`u` an unsigned 2-8 bit integer, packed as a little-endian bit stream into uint32 words).
The GGML types whose blocks fit that form are converted without changing a single value;
the others are widened to float (`DEQUANT_TYPES`). Error against `gguf.quants.dequantize`
(llama.cpp's reference), MLX values unpacked in float32 as `cpu.py` does:

    GGML type  MLX form           scale, bias (u)                     max / mean abs error
    ---------  -----------------  ----------------------------------  --------------------
    Q4_0       4-bit, group 32    d, -8d                              0 / 0
    Q4_1       4-bit, group 32    d, m                                0 / 0
    Q5_0       5-bit, group 32    d, -16d                             0 / 0
    Q5_1       5-bit, group 32    d, m                                0 / 0
    Q8_0       8-bit, group 32    d, -128d         (u = q + 128)      0 / 0
    Q4_K       4-bit, group 32    d*sc, -dmin*m                       0 / 0
    Q5_K       5-bit, group 32    d*sc, -dmin*m                       0 / 0
    Q3_K       8-bit, group 128   -d, 128d         (u = 128 - sc*q)   0 / 0
    IQ4_NL     8-bit, group 32    d, -128d         (u = k + 128)      0 / 0
    IQ4_XS     8-bit, group 32    d*ls, -128*d*ls  (u = k + 128)      0 / 0
    Q6_K       float16            -                                   6.0e-5 / 6.6e-6 (*)
    Q2_K       float16            -                                   5.0e-5 / 6.8e-6 (*)
    F32, F16   as stored          -                                   0 / 0
    BF16       bfloat16           -                                   0 / 0

    (*) random blocks with |w| <= 0.16: float16 rounding, 2^-12 of the value at most. On
        Gemma 3 270M's Q6_K tensors (|w| <= 0.74): 2.4e-4 / 2.0e-6.

Q6_K, Q3_K and Q2_K have sub-blocks of 16 values and MLX has no group size 16. Q3_K's
products sc*q (in [-124, 128]) still fit 8 bits over a whole super-block; Q6_K's (13 bits) and
Q2_K's (two scales per sub-block) do not, so they are widened to float16 (float32 where a
value would overflow float16). tests/test_gguf_types.py checks every row.

Scales and biases are stored as float16 when all of a tensor's are exactly float16 values
(Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q3_K: the file's float16 `d` times powers of two),
else as float32 (Q4_K, Q5_K, IQ4_XS: `d*sc` needs up to 17 significant bits). Rounded to
float16 they would move Q4_K values by up to 8.8e-5 (mean 1.3e-5) on |w| <= 0.18, i.e. up to
5% of the smallest values, where d*sc*q and dmin*m nearly cancel. MLX computes a quantized
layer in the dtype of its scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# GGML type id -> name (all that llama.cpp defines, for messages).
TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
}  # fmt: skip

# GGML type id -> (values per block, bytes per block), for every type with a known layout
# (used to check that no tensor runs past the end of the file, supported or not).
BLOCK_SIZES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1),
    25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = 0, 1, 2, 3, 6, 7, 8
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, BF16 = 10, 11, 12, 13, 14, 20, 23, 30

FLOAT_TYPES = (F32, F16, BF16)
AFFINE_TYPES = (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q3_K, IQ4_NL, IQ4_XS)
DEQUANT_TYPES = (Q6_K, Q2_K)
SUPPORTED_TYPES = FLOAT_TYPES + AFFINE_TYPES + DEQUANT_TYPES
SUPPORTED_TYPE_NAMES = tuple(TYPE_NAMES[t] for t in SUPPORTED_TYPES)

_IQ4_VALUES = np.array(
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.int16
)
_F16_MAX = float(np.finfo(np.float16).max)


@dataclass
class Tensor:
    """A converted tensor, numpy arrays in MLX's layout (rows = GGML's last dimension).

    Attributes:
        weight: float32/float16 values, bfloat16 bits (uint16, see `bfloat16`), or the
            packed affine-quantized values (uint32).
        scales: Per-group scales of an affine tensor (float16 or float32), else None.
        biases: Per-group biases, like `scales`.
        bits: Bits per quantized value, or None.
        group_size: Values per group, or None.
        bfloat16: `weight` holds bfloat16 bit patterns.
    """

    weight: np.ndarray
    scales: np.ndarray | None = None
    biases: np.ndarray | None = None
    bits: int | None = None
    group_size: int | None = None
    bfloat16: bool = False

    @property
    def quantized(self) -> bool:
        return self.scales is not None


def byte_size(ttype: int, count: int) -> int:
    """Bytes of `count` values of GGML type `ttype` (KeyError for an unknown type)."""
    block, block_bytes = BLOCK_SIZES[ttype]
    return count // block * block_bytes


def convert(raw: np.ndarray, ttype: int, shape: tuple[int, ...]) -> Tensor:
    """Convert one tensor's bytes.

    Args:
        raw: The tensor's bytes (uint8, any shape; a memory map is fine).
        ttype: Its GGML type (one of SUPPORTED_TYPES).
        shape: Its shape in numpy order (GGML's reversed).

    Returns:
        The tensor, affine-quantized for AFFINE_TYPES when it is a matrix whose rows hold
        whole blocks, else as floats.
    """
    raw = np.ascontiguousarray(raw).reshape(-1)
    if ttype == F32:
        return Tensor(raw.view(np.float32).reshape(shape))
    if ttype == F16:
        return Tensor(raw.view(np.float16).reshape(shape))
    if ttype == BF16:
        return Tensor(raw.view(np.uint16).reshape(shape), bfloat16=True)
    block, block_bytes = BLOCK_SIZES[ttype]
    blocks = raw.reshape(-1, block_bytes)
    if ttype in AFFINE_TYPES and len(shape) >= 2:
        u, scales, biases, bits, group = _AFFINE[ttype](blocks)
        rows = int(np.prod(shape[:-1]))
        packed = pack(u.reshape(rows, shape[-1]), bits)
        scales, biases = _scale_dtype(scales.reshape(rows, -1), biases.reshape(rows, -1))
        return Tensor(
            packed.reshape(*shape[:-1], -1),
            scales.reshape(*shape[:-1], -1),
            biases.reshape(*shape[:-1], -1),
            bits,
            group,
        )
    values = dequantize(blocks, ttype).reshape(shape)
    if np.abs(values).max(initial=0.0) <= _F16_MAX:
        return Tensor(values.astype(np.float16))
    return Tensor(values)


def dequantize(blocks: np.ndarray, ttype: int) -> np.ndarray:
    """float32 values of quantized blocks, as llama.cpp computes them (gguf-py)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    return gguf_dequantize(blocks, GGMLQuantizationType(ttype)).reshape(-1)


def unpack(tensor: Tensor) -> np.ndarray:
    """float32 values of a converted tensor (the reference for tests and error tables)."""
    if not tensor.quantized:
        if tensor.bfloat16:
            return (tensor.weight.astype(np.uint32) << 16).view(np.float32)
        return tensor.weight.astype(np.float32)
    scales, biases, bits = tensor.scales, tensor.biases, tensor.bits
    assert scales is not None and biases is not None and bits and tensor.group_size
    data = tensor.weight.view(np.uint8)
    n = data.shape[-1] * 8 // bits
    stream = np.unpackbits(data, axis=-1, bitorder="little").reshape(*data.shape[:-1], n, bits)
    u = (stream.astype(np.uint32) << np.arange(bits, dtype=np.uint32)).sum(-1)
    u = u.reshape(*u.shape[:-1], -1, tensor.group_size).astype(np.float32)
    out = u * scales[..., None].astype(np.float32) + biases[..., None].astype(np.float32)
    return out.reshape(*out.shape[:-2], -1)


def pack(u: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned `bits`-bit values (uint8, last axis a multiple of 32) as MLX does:
    a little-endian bit stream in uint32 words."""
    u = np.ascontiguousarray(u, dtype=np.uint8)
    lead, n = u.shape[:-1], u.shape[-1]
    if bits == 8:
        return u.view(np.uint32)
    if bits in (2, 4):
        per = 8 // bits
        parts = u.reshape(*lead, n // per, per)
        out = parts[..., 0].copy()
        for i in range(1, per):
            out |= parts[..., i] << np.uint8(bits * i)
        return out.reshape(*lead, -1).view(np.uint32)
    parts = u.reshape(*lead, n // 8, 8).astype(np.uint64)
    word = parts[..., 0].copy()
    for i in range(1, 8):
        word |= parts[..., i] << np.uint64(bits * i)
    data = word[..., None].view(np.uint8)[..., :bits]  # little-endian: the low bytes
    return np.ascontiguousarray(data).reshape(*lead, n * bits // 8).view(np.uint32)


def _scale_dtype(scales: np.ndarray, biases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float16 scales and biases when that holds them exactly, else float32."""
    s16, b16 = scales.astype(np.float16), biases.astype(np.float16)
    if np.array_equal(s16.astype(np.float32), scales) and np.array_equal(
        b16.astype(np.float32), biases
    ):
        return s16, b16
    return scales.astype(np.float32), biases.astype(np.float32)


# ---------------------------------------------------------------------------------------
# Block layouts -> (u values in order, scales, biases, bits, group size). `blocks` is
# (n_blocks, bytes per block) uint8; u is (n_blocks, values per block) uint8 and scales,
# biases (n_blocks, groups per block) float32.

_Affine = tuple[np.ndarray, np.ndarray, np.ndarray, int, int]


def _f16(b: np.ndarray) -> np.ndarray:
    """float32 values of little-endian float16 bytes (n, 2k) -> (n, k)."""
    return np.ascontiguousarray(b).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """32-value groups stored as 16 bytes: low nibbles first, then high nibbles."""
    n, size = qs.shape
    q = qs.reshape(n, size // 16, 1, 16) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (q & np.uint8(0x0F)).reshape(n, -1)


def _high_bits(qh: np.ndarray, n_values: int) -> np.ndarray:
    """Bit i of the little-endian bit field `qh` for values 0..n_values-1 (legacy Q5)."""
    return np.unpackbits(qh, axis=-1, bitorder="little")[:, :n_values]


def _q4_0(blocks: np.ndarray) -> _Affine:
    d = _f16(blocks[:, :2])
    return _nibbles(blocks[:, 2:]), d, -8 * d, 4, 32


def _q4_1(blocks: np.ndarray) -> _Affine:
    return _nibbles(blocks[:, 4:]), _f16(blocks[:, :2]), _f16(blocks[:, 2:4]), 4, 32


def _q5_0(blocks: np.ndarray) -> _Affine:
    d = _f16(blocks[:, :2])
    u = _nibbles(blocks[:, 6:]) | (_high_bits(blocks[:, 2:6], 32) << np.uint8(4))
    return u, d, -16 * d, 5, 32


def _q5_1(blocks: np.ndarray) -> _Affine:
    u = _nibbles(blocks[:, 8:]) | (_high_bits(blocks[:, 4:8], 32) << np.uint8(4))
    return u, _f16(blocks[:, :2]), _f16(blocks[:, 2:4]), 5, 32


def _q8_0(blocks: np.ndarray) -> _Affine:
    d = _f16(blocks[:, :2])
    return blocks[:, 2:] ^ np.uint8(0x80), d, -128 * d, 8, 32


def _k_scale_min(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eight 6-bit scales and mins of a Q4_K/Q5_K super-block (12 bytes)."""
    n = scales.shape[0]
    s = scales.reshape(n, 3, 4)
    d, m, md = s[:, 0], s[:, 1], s[:, 2]
    sc = np.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.astype(np.float32), mn.astype(np.float32)


def _k_nibbles(qs: np.ndarray) -> np.ndarray:
    """Q4_K/Q5_K low bits: each 32 bytes hold two 32-value sub-blocks (low, high nibbles)."""
    n = qs.shape[0]
    q = qs.reshape(n, -1, 1, 32) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (q & np.uint8(0x0F)).reshape(n, -1)


def _q4_k(blocks: np.ndarray) -> _Affine:
    d, dmin = _f16(blocks[:, :2]), _f16(blocks[:, 2:4])
    sc, mn = _k_scale_min(blocks[:, 4:16])
    return _k_nibbles(blocks[:, 16:]), d * sc, -(dmin * mn), 4, 32


def _q5_k(blocks: np.ndarray) -> _Affine:
    n = blocks.shape[0]
    d, dmin = _f16(blocks[:, :2]), _f16(blocks[:, 2:4])
    sc, mn = _k_scale_min(blocks[:, 4:16])
    qh = blocks[:, 16:48].reshape(n, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    u = _k_nibbles(blocks[:, 48:]) | ((qh & np.uint8(1)).reshape(n, -1) << np.uint8(4))
    return u, d * sc, -(dmin * mn), 5, 32


def _q3_k(blocks: np.ndarray) -> _Affine:
    n = blocks.shape[0]
    hmask, qs, packed, d = blocks[:, :32], blocks[:, 32:96], blocks[:, 96:108], blocks[:, 108:]
    low = packed[:, :8].reshape(n, 1, 8) >> np.array([0, 4], np.uint8).reshape(1, 2, 1)
    high = packed[:, 8:].reshape(n, 1, 4) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 4, 1)
    sc = (low.reshape(n, 16) & 0x0F) | ((high.reshape(n, 16) & 0x03) << 4)
    sc = sc.astype(np.int16) - 32  # 16 scales in [-32, 31]
    ql = qs.reshape(n, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)
    qh = hmask.reshape(n, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    q = (ql.reshape(n, 16, 16) & 3).astype(np.int16)
    q -= ((qh.reshape(n, 16, 16) & 1) ^ 1).astype(np.int16) << 2  # q in [-4, 3]
    u = (128 - sc[:, :, None] * q).reshape(n, 256)  # sc*q in [-124, 128]: u in [0, 252]
    dd = _f16(d)
    return u.astype(np.uint8), np.repeat(-dd, 2, axis=1), np.repeat(128 * dd, 2, axis=1), 8, 128


def _iq4_nl(blocks: np.ndarray) -> _Affine:
    d = _f16(blocks[:, :2])
    u = (_IQ4_VALUES[_nibbles(blocks[:, 2:])] + 128).astype(np.uint8)
    return u, d, -128 * d, 8, 32


def _iq4_xs(blocks: np.ndarray) -> _Affine:
    n = blocks.shape[0]
    d = _f16(blocks[:, :2])
    scales_h = np.ascontiguousarray(blocks[:, 2:4]).view(np.uint16)  # (n, 1)
    scales_l = blocks[:, 4:8].reshape(n, 4, 1) >> np.array([0, 4], np.uint8).reshape(1, 1, 2)
    shifts = np.arange(0, 16, 2, dtype=np.uint16).reshape(1, 8)
    high = ((scales_h >> shifts) & 3).astype(np.int16)
    ls = ((scales_l.reshape(n, 8) & 0x0F).astype(np.int16) | (high << 4)) - 32
    dl = d * ls.astype(np.float32)
    q = blocks[:, 8:].reshape(n, 8, 1, 16) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    u = (_IQ4_VALUES[(q & 0x0F).reshape(n, 256)] + 128).astype(np.uint8)
    return u, dl, -128 * dl, 8, 32


_AFFINE = {
    Q4_0: _q4_0, Q4_1: _q4_1, Q5_0: _q5_0, Q5_1: _q5_1, Q8_0: _q8_0, Q4_K: _q4_k,
    Q5_K: _q5_k, Q3_K: _q3_k, IQ4_NL: _iq4_nl, IQ4_XS: _iq4_xs,
}  # fmt: skip
