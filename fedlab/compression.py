"""Uplink compression: codecs for a client's update (``08_communication_cost``).

A client sends its update Δ (one array per weight) to the server. A *codec* turns Δ into an
:class:`Encoded` record holding exactly the arrays that would travel over the network, in the
dtype they would travel in, and turns it back into float32 arrays of the original shapes.
``Encoded.num_bytes`` is measured (the sum of the arrays' ``nbytes``), so a plot of accuracy
against bytes sent uses the real message sizes.

=============================  ========================================  =====================
codec                          sends                                     bytes (n parameters)
=============================  ========================================  =====================
:class:`Identity`              float32 values (lossless)                 4 n
:class:`Float16`               float16 values (a cast)                   2 n
:class:`StochasticQuantizer`   ``bits``-bit codes + one float32 scale    n·bits/8 + 4 n/block
                               per block (unbiased, QSGD-style)
:class:`TopK`                  int32 indices + float32 values of the     8 ⌈fraction·n⌉
                               largest-magnitude coordinates
=============================  ========================================  =====================

:class:`RandomRotation` wraps a codec (usually the quantiser) with a seeded randomised Hadamard
transform that spreads large coordinates out before quantising.

:class:`ErrorFeedback` wraps any codec: the client adds what earlier rounds failed to send (its
*residual*) before compressing, and keeps the new difference for next time. It is a pair of pure
functions (``init``, ``apply``); the caller keeps each client's residual.

Every codec works on the flattened update: the arrays are concatenated, in order, into one
float32 vector of length n (scalars and empty arrays are fine), and ``decode`` splits it again.
The module is NumPy only: compression happens once per client per round, outside the compiled
training step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from fedlab.validate import check_float, check_int

Weights = list[np.ndarray]
Shapes = tuple[tuple[int, ...], ...]


# -- the message ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Encoded:
    """What one client sends: the arrays on the wire plus static shape information.

    Attributes:
        config: the settings of the codec that produced it (``codec.config()``); ``decode``
            checks it, so a message cannot be decoded with the wrong codec.
        shapes: the shape of each array of the update (static: the server knows the model).
        arrays: name -> the array sent, in the dtype sent (read-only).

    Example:
        >>> enc = Float16().encode([np.ones((2, 3)), np.zeros(4)])
        >>> enc
        Encoded(codec='Float16', shapes=((2, 3), (4,)), arrays={'values': float16[10]}, num_bytes=20)
        >>> enc.num_bytes, enc.num_params
        (20, 10)
    """

    config: dict
    shapes: Shapes
    arrays: dict[str, np.ndarray]

    @property
    def num_bytes(self) -> int:
        """Bytes sent: the sum of ``nbytes`` of the arrays (shape information is not counted)."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    @property
    def num_params(self) -> int:
        """Number of parameters n in the update this message encodes."""
        return sum(math.prod(s) for s in self.shapes)

    def __repr__(self) -> str:
        arrays = ", ".join(f"{k!r}: {a.dtype}{list(a.shape)}" for k, a in self.arrays.items())
        return (
            f"Encoded(codec={self.config['name']!r}, shapes={self.shapes}, "
            f"arrays={{{arrays}}}, num_bytes={self.num_bytes})"
        )


@runtime_checkable
class Codec(Protocol):
    """What every codec provides: ``name``, ``encode``, ``decode`` and ``config``.

    Example:
        >>> isinstance(TopK(0.1), Codec), isinstance("topk", Codec)
        (True, False)
    """

    name: ClassVar[str]

    def encode(self, update: Sequence, seed: int | None = None) -> Encoded: ...

    def decode(self, encoded: Encoded) -> Weights: ...

    def config(self) -> dict: ...


# -- shared helpers ------------------------------------------------------------------------------


def _flatten(update: object) -> tuple[np.ndarray, Shapes]:
    """Check ``update`` (a list of real arrays, finite) and concatenate it into float32 [n]."""
    if isinstance(update, np.ndarray) or not isinstance(update, list | tuple):
        raise TypeError(
            f"update must be a list of arrays (one per weight), got {type(update).__name__}"
        )
    flat, shapes = [], []
    for i, value in enumerate(update):
        try:
            array = np.asarray(value)
        except Exception as error:  # noqa: BLE001 - any conversion failure is a type error here
            raise TypeError(
                f"update[{i}] must be array-like, got {type(value).__name__}"
            ) from error
        if array.dtype.kind not in "fiu":
            raise TypeError(f"update[{i}] must hold real numbers, got dtype {array.dtype}")
        with np.errstate(over="ignore"):  # too-large values become inf, reported just below
            array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"update[{i}] must be finite (no NaN or inf) after casting to float32")
        flat.append(array.reshape(-1))
        shapes.append(tuple(int(d) for d in array.shape))
    vector = np.concatenate(flat) if flat else np.zeros(0, np.float32)
    return vector, tuple(shapes)


def _unflatten(vector: np.ndarray, shapes: Shapes) -> Weights:
    """Split a float32 vector back into arrays of ``shapes`` (new, writeable arrays)."""
    out, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(vector[start : start + size].astype(np.float32).reshape(shape))
        start += size
    return out


def _message(codec: Codec, shapes: Shapes, **arrays: np.ndarray) -> Encoded:
    for array in arrays.values():
        array.flags.writeable = False
    return Encoded(config=codec.config(), shapes=shapes, arrays=arrays)


def _check_encoded(codec: Codec, encoded: object, expected: dict[str, tuple]) -> None:
    """Raise unless ``encoded`` came from ``codec`` and holds ``expected`` name -> (dtype, shape)."""
    if not isinstance(encoded, Encoded):
        raise TypeError(f"encoded must be an Encoded record, got {type(encoded).__name__}")
    if encoded.config != codec.config():
        raise ValueError(
            f"encoded was made by {encoded.config}, so it cannot be decoded by {codec.config()}"
        )
    if set(encoded.arrays) != set(expected):
        raise ValueError(
            f"encoded.arrays must have keys {sorted(expected)}, got {sorted(encoded.arrays)}"
        )
    for key, (dtype, shape) in expected.items():
        array = encoded.arrays[key]
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != shape:
            got = f"{array.dtype}{list(array.shape)}" if isinstance(array, np.ndarray) else array
            raise ValueError(
                f"encoded.arrays[{key!r}] must be {np.dtype(dtype)}{list(shape)}, got {got}"
            )


def _num_params(encoded: object) -> int:
    if not isinstance(encoded, Encoded):
        raise TypeError(f"encoded must be an Encoded record, got {type(encoded).__name__}")
    return encoded.num_params


# -- lossless and casting codecs -----------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Send the update as float32, unchanged: the baseline every codec is compared with.

    Example:
        >>> codec = Identity()
        >>> enc = codec.encode([np.array([1.5, -2.0]), np.float32(3.0)])
        >>> enc.num_bytes, [a.tolist() for a in codec.decode(enc)]
        (12, [[1.5, -2.0], 3.0])
    """

    name: ClassVar[str] = "Identity"

    def encode(self, update: Sequence, seed: int | None = None) -> Encoded:
        """Flatten ``update`` into one float32 vector (``seed`` is unused)."""
        vector, shapes = _flatten(update)
        return _message(self, shapes, values=vector)

    def decode(self, encoded: Encoded) -> Weights:
        """The float32 arrays, in their original shapes."""
        n = _num_params(encoded)
        _check_encoded(self, encoded, {"values": (np.float32, (n,))})
        return _unflatten(encoded.arrays["values"], encoded.shapes)

    def config(self) -> dict:
        """The settings, JSON-friendly.

        Example:
            >>> Identity().config()
            {'name': 'Identity'}
        """
        return {"name": self.name}


@dataclass(frozen=True)
class Float16:
    """Send the update cast to float16: half the bytes, relative error ≤ 2⁻¹¹ (≈ 0.05 %).

    Values too large for float16 (``|x| > 65504``) raise ``ValueError`` instead of becoming inf;
    values below ~6e-8 round to zero. The cast is deterministic (``seed`` is unused).

    Example:
        >>> codec = Float16()
        >>> enc = codec.encode([np.array([1.0, 1 / 3])])
        >>> enc.num_bytes, codec.decode(enc)[0].tolist()
        (4, [1.0, 0.333251953125])
    """

    name: ClassVar[str] = "Float16"

    def encode(self, update: Sequence, seed: int | None = None) -> Encoded:
        """Flatten ``update`` and cast it to float16."""
        vector, shapes = _flatten(update)
        limit = float(np.finfo(np.float16).max)
        if vector.size and float(np.max(np.abs(vector))) > limit:
            raise ValueError(f"Float16 can only send values in [-{limit:g}, {limit:g}]")
        return _message(self, shapes, values=vector.astype(np.float16))

    def decode(self, encoded: Encoded) -> Weights:
        """The float16 values as float32 arrays in their original shapes."""
        n = _num_params(encoded)
        _check_encoded(self, encoded, {"values": (np.float16, (n,))})
        return _unflatten(encoded.arrays["values"].astype(np.float32), encoded.shapes)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {"name": self.name}


# -- stochastic quantisation ---------------------------------------------------------------------


def _code_dtype(bits: int) -> type:
    return np.uint16 if bits == 16 else np.uint8


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes in [0, 2^bits) -> the array sent: uint8/uint16 as is for 8/16 bits, else a bit stream.

    Other widths are packed ``bits`` bits per code into ``ceil(n·bits/8)`` bytes (least
    significant bit first), so the message size reflects the bit width exactly.
    """
    if bits in (8, 16):
        return codes.astype(_code_dtype(bits))
    bit_matrix = (codes.astype(np.uint32)[:, None] >> np.arange(bits, dtype=np.uint32)) & 1
    return np.packbits(bit_matrix.astype(np.uint8).reshape(-1), bitorder="little")


def _unpack(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    if bits in (8, 16):
        return packed.astype(np.int64)
    bit_matrix = np.unpackbits(packed, count=n * bits, bitorder="little").reshape(n, bits)
    return bit_matrix.astype(np.int64) @ (1 << np.arange(bits, dtype=np.int64))


def _packed_shape(bits: int, n: int) -> tuple[int]:
    return (n,) if bits in (8, 16) else (math.ceil(n * bits / 8),)


@dataclass(frozen=True)
class StochasticQuantizer:
    """Unbiased stochastic ``bits``-bit quantisation per block, QSGD-style (Alistarh et al. 2017).

    The flattened update is cut into blocks of ``block_size`` coordinates (the last may be
    shorter; blocks run across weight boundaries). For a block with scale ``m = max |x|`` (sent as
    float32), every x is rounded to the symmetric grid of s + 1 = 2^bits levels

        q_j = m · (2j/s − 1),   j = 0 … s,   step Δ = 2m/s,

    so the sign is part of the code j (1 bit sends ±m, like a stochastic signSGD). With
    u = (x/m + 1)·s/2 and l = ⌊u⌋, the code is j = l + 1 with probability p = u − l, else l
    (stochastic rounding). Hence E[q_j] = x (unbiased) and, per coordinate,

        Var = Δ² p (1 − p) ≤ Δ²/4 = m²/s².

    The ``max |x|`` scale (rather than QSGD's L2 norm) keeps the step small and every decoded value
    in [−m, m]; an all-zero block decodes to zeros. Because s is odd, 0 is not a level: a zero
    inside a non-zero block is sent as ±m/s at random (unbiased, with the full variance m²/s²). Codes are sent as uint8 (8 bits), uint16
    (16 bits) or, for any other width, bit-packed into ⌈n·bits/8⌉ bytes: 8 bits cost ≈ ¼ of
    float32 and 4 bits ≈ ⅛, plus 4 bytes per block for the scales.

    Attributes:
        bits: bits per coordinate, in [1, 16].
        block_size: coordinates per scale (≥ 1); smaller blocks → smaller m, more scales to send.

    Example:
        >>> codec = StochasticQuantizer(bits=4, block_size=4)
        >>> enc = codec.encode([np.array([1.0, -1.0, 0.2, 0.0])], seed=0)
        >>> enc
        Encoded(codec='StochasticQuantizer', shapes=((4,),), arrays={'codes': uint8[2], 'scales': float32[1]}, num_bytes=6)
        >>> [round(v, 4) for v in codec.decode(enc)[0].tolist()]  # grid step 2/15
        [1.0, -1.0, 0.2, 0.0667]
        >>> [round(v, 6) for v in codec.variance_bound(enc)[0].tolist()]  # m²/s² = 1/15²
        [0.004444, 0.004444, 0.004444, 0.004444]
    """

    bits: int = 8
    block_size: int = 256
    name: ClassVar[str] = "StochasticQuantizer"

    def __post_init__(self):
        object.__setattr__(self, "bits", check_int("bits", self.bits, low=1, high=16))
        object.__setattr__(self, "block_size", check_int("block_size", self.block_size, low=1))

    @property
    def levels(self) -> int:
        """s = 2^bits − 1: the number of grid steps across [−m, m]."""
        return 2**self.bits - 1

    def _blocks(self, n: int) -> np.ndarray:
        """Block number of each of the n coordinates."""
        return np.arange(n) // self.block_size

    def encode(self, update: Sequence, seed: int | None = None) -> Encoded:
        """Quantise ``update``; the same ``seed`` gives the same codes (``None``: fresh randomness)."""
        vector, shapes = _flatten(update)
        n, s = vector.size, self.levels
        num_blocks = math.ceil(n / self.block_size)
        padded = np.zeros(num_blocks * self.block_size, np.float32)
        padded[:n] = vector
        scales = np.abs(padded.reshape(num_blocks, self.block_size)).max(axis=1)
        m = scales[self._blocks(n)].astype(np.float64)
        safe_m = np.where(m > 0, m, 1.0)
        u = np.clip((vector / safe_m + 1.0) * (s / 2.0), 0.0, s)
        low = np.floor(u)
        rng = np.random.default_rng(seed)
        codes = low + (rng.random(n) < (u - low))
        codes = np.minimum(codes, s).astype(np.int64)
        return _message(self, shapes, codes=_pack(codes, self.bits), scales=scales)

    def _expected(self, n: int) -> dict[str, tuple]:
        return {
            "codes": (_code_dtype(self.bits), _packed_shape(self.bits, n)),
            "scales": (np.float32, (math.ceil(n / self.block_size),)),
        }

    def decode(self, encoded: Encoded) -> Weights:
        """Rebuild float32 arrays from the codes and scales: q_j = m · (2j/s − 1)."""
        n = _num_params(encoded)
        _check_encoded(self, encoded, self._expected(n))
        codes = _unpack(encoded.arrays["codes"], self.bits, n)
        m = encoded.arrays["scales"][self._blocks(n)].astype(np.float64)
        values = m * (2.0 * codes / self.levels - 1.0)
        return _unflatten(values.astype(np.float32), encoded.shapes)

    def variance_bound(self, encoded: Encoded) -> Weights:
        """The per-coordinate bound m²/s² on Var[decode], from the scales in ``encoded``.

        Example:
            >>> enc = StochasticQuantizer(bits=1).encode([np.array([0.5, -2.0])], seed=0)
            >>> StochasticQuantizer(bits=1).variance_bound(enc)[0].tolist()
            [4.0, 4.0]
        """
        n = _num_params(encoded)
        _check_encoded(self, encoded, self._expected(n))
        m = encoded.arrays["scales"][self._blocks(n)].astype(np.float64)
        return _unflatten((m / self.levels) ** 2, encoded.shapes)

    def config(self) -> dict:
        """The settings, JSON-friendly.

        Example:
            >>> StochasticQuantizer(bits=4, block_size=128).config()
            {'name': 'StochasticQuantizer', 'bits': 4, 'block_size': 128}
        """
        return {"name": self.name, "bits": self.bits, "block_size": self.block_size}


# -- sparsification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopK:
    """Send only the k largest-magnitude coordinates of the flattened update (the rest are 0).

    k = ⌈fraction · n⌉ (and at least 1 for a non-empty update; fraction · n is rounded to 9
    decimals first, so float noise such as 0.07 · 100 = 7.000000000000001 does not add one). The message is
    int32 indices (ascending) plus their float32 values: 8 k bytes, ≈ ``fraction`` · 2 of float32.
    Ties in ``|x|`` are broken by position (the earlier coordinate wins). Deterministic (``seed`` is
    unused) and biased: pair it with :class:`ErrorFeedback` so dropped mass is sent later.

    Attributes:
        fraction: share of coordinates sent, in (0, 1].

    Example:
        >>> codec = TopK(fraction=0.5)
        >>> enc = codec.encode([np.array([0.1, -3.0, 2.0, 0.5])])
        >>> enc.arrays["indices"].tolist(), enc.arrays["values"].tolist(), enc.num_bytes
        ([1, 2], [-3.0, 2.0], 16)
        >>> codec.decode(enc)[0].tolist()
        [0.0, -3.0, 2.0, 0.0]
    """

    fraction: float = 0.01
    name: ClassVar[str] = "TopK"

    def __post_init__(self):
        object.__setattr__(
            self, "fraction", check_float("fraction", self.fraction, 0.0, 1.0, low_inclusive=False)
        )

    def num_kept(self, n: int) -> int:
        """k = ⌈fraction · n⌉ coordinates kept out of n.

        Example:
            >>> TopK(0.01).num_kept(250), TopK(0.01).num_kept(0)
            (3, 0)
        """
        n = check_int("n", n, low=0)
        if n == 0:
            return 0
        # round(…, 9) first so that e.g. 0.07 * 100 = 7.000000000000001 keeps 7, not 8
        return min(n, max(1, math.ceil(round(self.fraction * n, 9))))

    def encode(self, update: Sequence, seed: int | None = None) -> Encoded:
        """Keep the ``num_kept(n)`` coordinates with the largest ``|x|``."""
        vector, shapes = _flatten(update)
        n = vector.size
        if n >= 2**31:
            raise ValueError(f"TopK sends int32 indices, so n must be below 2**31, got {n}")
        k = self.num_kept(n)
        order = np.argsort(-np.abs(vector), kind="stable")  # stable: ties keep the earlier index
        indices = np.sort(order[:k]).astype(np.int32)
        return _message(self, shapes, indices=indices, values=vector[indices])

    def decode(self, encoded: Encoded) -> Weights:
        """Scatter the values into zeros of the original shapes."""
        n = _num_params(encoded)
        k = self.num_kept(n)
        _check_encoded(self, encoded, {"indices": (np.int32, (k,)), "values": (np.float32, (k,))})
        indices = encoded.arrays["indices"]
        if k and (indices.min() < 0 or indices.max() >= n):
            raise ValueError(f"encoded.arrays['indices'] must lie in [0, {n - 1}]")
        vector = np.zeros(n, np.float32)
        vector[indices] = encoded.arrays["values"]
        return _unflatten(vector, encoded.shapes)

    def config(self) -> dict:
        """The settings, JSON-friendly.

        Example:
            >>> TopK(0.1).config()
            {'name': 'TopK', 'fraction': 0.1}
        """
        return {"name": self.name, "fraction": self.fraction}


# -- random rotation -----------------------------------------------------------------------------


def _hadamard(vector: np.ndarray) -> np.ndarray:
    """H·v for the d×d Sylvester–Hadamard matrix H (d a power of two), in O(d log d); H·H = d·I."""
    v, h = vector.astype(np.float64), 1
    while h < v.size:
        pairs = v.reshape(-1, 2, h)
        v = np.stack([pairs[:, 0] + pairs[:, 1], pairs[:, 0] - pairs[:, 1]], axis=1).reshape(-1)
        h *= 2
    return v


@dataclass(frozen=True)
class RandomRotation:
    """Rotate the update with a randomised Hadamard transform, then compress it with ``codec``.

    The flattened update x (n values) is zero-padded to d = the next power of two and sent as
    ``codec.encode([R x])`` with R = H·D/√d: D a diagonal of random ±1 drawn from
    ``rotation_seed`` and H the Hadamard matrix. R is orthogonal (R⁻¹ = D·H/√d), so ``decode``
    inverts it exactly, and an unbiased codec stays unbiased. The rotation spreads a few large
    coordinates over all d, so a quantiser's scale ``max |x|`` shrinks from ‖x‖∞ towards
    ‖x‖₂·√(2 ln d / d) and its error with it (Suresh et al. 2017). Costs: the padding (up to 2×
    the coordinates) and O(d log d) work on each side. Both sides know ``rotation_seed``; it is
    not sent. (A deployment would draw a fresh one each round from shared randomness.)

    Attributes:
        codec: the codec applied to the rotated vector.
        rotation_seed: seed of the random signs D (an integer ≥ 0).

    Example:
        >>> codec = RandomRotation(Identity(), rotation_seed=0)
        >>> enc = codec.encode([np.array([3.0, 0.0, 0.0])])  # padded to d = 4
        >>> enc.num_bytes, np.abs(enc.arrays["values"]).tolist()  # the spike is spread out
        (16, [1.5, 1.5, 1.5, 1.5])
        >>> [round(v, 6) for v in codec.decode(enc)[0].tolist()]
        [3.0, 0.0, 0.0]
    """

    codec: Codec
    rotation_seed: int = 0
    name: ClassVar[str] = "RandomRotation"

    def __post_init__(self):
        if not isinstance(self.codec, Codec):
            raise TypeError(
                "codec must be a codec such as StochasticQuantizer(), "
                f"got {type(self.codec).__name__}"
            )
        seed = check_int("rotation_seed", self.rotation_seed, low=0)
        object.__setattr__(self, "rotation_seed", seed)

    def _signs(self, d: int) -> np.ndarray:
        return np.random.default_rng(self.rotation_seed).choice([-1.0, 1.0], size=d)

    @staticmethod
    def _padded_size(n: int) -> int:
        return 1 << max(n - 1, 0).bit_length() if n else 0

    def encode(self, update: Sequence, seed: int | None = None) -> Encoded:
        """Rotate the flattened update and encode it with ``codec`` (``seed`` goes to the codec)."""
        vector, shapes = _flatten(update)
        d = self._padded_size(vector.size)
        padded = np.zeros(d)
        padded[: vector.size] = vector
        rotated = _hadamard(self._signs(d) * padded) / math.sqrt(max(d, 1))
        inner = self.codec.encode([rotated.astype(np.float32)], seed=seed)
        return Encoded(config=self.config(), shapes=shapes, arrays=inner.arrays)

    def decode(self, encoded: Encoded) -> Weights:
        """Decode with ``codec``, undo the rotation and drop the padding."""
        n = _num_params(encoded)
        if encoded.config != self.config():
            raise ValueError(
                f"encoded was made by {encoded.config}, so it cannot be decoded by {self.config()}"
            )
        d = self._padded_size(n)
        inner = Encoded(config=self.codec.config(), shapes=((d,),), arrays=encoded.arrays)
        rotated = self.codec.decode(inner)[0]
        vector = self._signs(d) * _hadamard(rotated) / math.sqrt(max(d, 1))
        return _unflatten(vector[:n].astype(np.float32), encoded.shapes)

    def config(self) -> dict:
        """The settings, JSON-friendly.

        Example:
            >>> RandomRotation(Float16(), rotation_seed=3).config()
            {'name': 'RandomRotation', 'codec': {'name': 'Float16'}, 'rotation_seed': 3}
        """
        return {
            "name": self.name,
            "codec": self.codec.config(),
            "rotation_seed": self.rotation_seed,
        }


# -- error feedback ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorFeedback:
    """Error feedback (Seide et al. 2014; Stich et al. 2018): resend what compression dropped.

    Each round a client compresses ``update + residual`` and keeps
    ``new_residual = (update + residual) − decode(encoded)``. Nothing is lost, only delayed:
    Σ sent + residual = Σ updates, round after round. Pure functions: the caller keeps one
    residual per client (the engine will keep them with the other per-client state).

    Attributes:
        codec: the codec that compresses the corrected update.

    Example:
        >>> ef = ErrorFeedback(TopK(fraction=0.5))
        >>> residual = ef.init([np.zeros(2)])
        >>> enc, residual = ef.apply([np.array([1.0, 0.75])], residual)
        >>> ef.codec.decode(enc)[0].tolist(), residual[0].tolist()
        ([1.0, 0.0], [0.0, 0.75])
        >>> enc, residual = ef.apply([np.array([1.0, 0.75])], residual)  # 0.75 + 0.75 now wins
        >>> ef.codec.decode(enc)[0].tolist(), residual[0].tolist()
        ([0.0, 1.5], [1.0, 0.0])
    """

    codec: Codec

    def __post_init__(self):
        if not isinstance(self.codec, Codec):
            raise TypeError(
                "codec must be a codec such as TopK(0.01) or StochasticQuantizer(), "
                f"got {type(self.codec).__name__}"
            )

    def init(self, weights: Sequence) -> Weights:
        """A zero residual shaped like ``weights`` (float32).

        Example:
            >>> [r.shape for r in ErrorFeedback(Float16()).init([np.ones((2, 3)), np.ones(())])]
            [(2, 3), ()]
        """
        _, shapes = _flatten(weights)
        return [np.zeros(shape, np.float32) for shape in shapes]

    def apply(
        self, update: Sequence, residual: Sequence, seed: int | None = None
    ) -> tuple[Encoded, Weights]:
        """Compress ``update + residual``; return the message and the new residual.

        Neither argument is changed.
        """
        vector, shapes = _flatten(update)
        carried, residual_shapes = _flatten(residual)
        if residual_shapes != shapes:
            raise ValueError(
                f"residual must have the update's shapes {list(shapes)}, got {list(residual_shapes)}"
            )
        corrected = _unflatten(vector + carried, shapes)
        encoded = self.codec.encode(corrected, seed=seed)
        sent = self.codec.decode(encoded)
        return encoded, [(c - d).astype(np.float32) for c, d in zip(corrected, sent, strict=True)]

    def config(self) -> dict:
        """The settings, JSON-friendly.

        Example:
            >>> ErrorFeedback(TopK(0.1)).config()
            {'name': 'ErrorFeedback', 'codec': {'name': 'TopK', 'fraction': 0.1}}
        """
        return {"name": "ErrorFeedback", "codec": self.codec.config()}
