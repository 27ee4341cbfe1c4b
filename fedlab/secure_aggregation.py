"""Secure aggregation: the server learns the sum of the updates and nothing else
(``12_secure_aggregation``).

A faithful, single-process simulation of the semi-honest protocol of Bonawitz et al.,
"Practical Secure Aggregation for Privacy-Preserving Machine Learning" (CCS 2017), written as
the paper's four rounds with explicit client and server state:

============================  ===================================================================
round                         what happens
============================  ===================================================================
0 ``AdvertiseKeys``           each client u makes two X25519 key pairs, ``(c_pk, c_sk)`` to
                              encrypt shares and ``(s_pk, s_sk)`` for the pairwise masks, and sends
                              the public keys; the server broadcasts all of them.
1 ``ShareKeys``               u draws a self-mask seed ``b_u`` and Shamir-shares ``b_u`` and
                              ``s_sk_u`` (threshold t) among all clients; the share for v travels
                              through the server encrypted with AES-GCM under a key agreed from
                              ``c_sk_u`` and ``c_pk_v``, so the server cannot read it.
2 ``MaskedInputCollection``   u sends ``y_u = x_u + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv)``
                              (mod 2^k), where ``s_uv`` = HKDF(X25519(s_sk_u, s_pk_v)) = ``s_vu``.
3 ``Unmasking``               the server names the clients whose ``y`` arrived (U3); each
                              surviving client returns its share of ``b_u`` for u in U3 and of
                              ``s_sk_v`` for v that dropped; with t shares the server rebuilds
                              them, removes the self masks and the dropped clients' pairwise masks,
                              and is left with Σ_{u∈U3} x_u. Fewer than t shares: it refuses.
============================  ===================================================================

Summing the ``y_u`` cancels every pairwise mask between two clients that both sent ``y``
(``+PRG(s_uv)`` from the smaller id, ``−PRG(s_uv)`` from the larger one); a single ``y_u`` is
uniformly distributed mod 2^k whatever ``x_u`` is, because ``PRG(b_u)`` is.

Choices made here (all documented in the code too):

* **Quantisation** (:func:`quantize`): a value in ``[-clip, clip]`` becomes the integer
  ``round((x + clip) / step)`` in ``[0, 2^bits − 2]`` with ``step = 2·clip / (2^bits − 2)``
  (an odd number of levels, so 0 is sent exactly rather than always rounded the same way);
  rounding is deterministic (to nearest), so the exact integer sum is testable. Values outside
  ``[-clip, clip]`` are rejected: clip them first (``np.clip``). Each coordinate is off by at
  most ``step / 2``, so a sum of m clients is within ``m · step / 2`` of the float sum
  (:func:`quantization_error_bound`).
* **Modulus**: arithmetic is mod ``2^k`` with ``k = bits + ceil(log2 n)`` for n clients, so the
  sum of n values below ``2^bits`` can never wrap; numpy ``uint64`` arrays wrap mod 2^64, and
  2^k divides 2^64, so masking with ``2^k − 1`` after each operation is exact (k ≤ 62).
* **PRG**: the ChaCha20 key stream from ``cryptography`` keyed by a 32-byte seed (nonce 0),
  read as little-endian uint64 and reduced mod 2^k. Each seed is used for one vector per round.
* **Key agreement**: X25519 followed by HKDF-SHA256 (different ``info`` strings for mask seeds
  and for share-encryption keys).
* **Shamir sharing** over the prime field ``p = 2^521 − 1`` (a Mersenne prime larger than any
  32-byte secret, so an X25519 private key or a seed is one field element); share ``i`` of
  client with position ``i`` in the sorted ids is the polynomial at ``x = i + 1``.
* **Threshold**: ``n // 2 + 1 ≤ t ≤ n`` (the paper's ``t > n/2``: two disjoint groups of
  clients cannot both hold t shares, so a client's ``b_u`` and ``s_sk_u`` are never both
  rebuilt). Up to ``n − t`` clients may drop; the default t is ``n // 2 + 1``.
* **Simplifications**: honest-but-curious server and clients; no signatures, PKI or
  ConsistencyCheck round (those are the paper's active-adversary version); a client that drops
  before ``ShareKeys`` is simply not in the round. Determinism: ``seed`` fixes every key, seed,
  share polynomial and so every byte.
* **Cost accounting** counts payload bytes: 32-byte public keys, AES-GCM ciphertexts
  (plaintext ``u‖v‖share_b‖share_s`` plus a 16-byte tag), masked vectors packed at k bits a
  coordinate, 66-byte shares, 4-byte client ids where a message names a client.

The engine calls :func:`secure_sum` on the flattened client updates of a round; the notebook
uses :func:`mask_breakdown` to show the masks cancelling by hand for three clients and
:func:`measure_overhead` to plot the cost as n grows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedlab.validate import check_float, check_int

if TYPE_CHECKING:
    from fedlab.aggregators import ClientUpdates, Summed

PRIME = 2**521 - 1
"""The Shamir field: the Mersenne prime 2^521 − 1 (larger than any 32-byte secret)."""

SHARE_BYTES = (PRIME.bit_length() + 7) // 8  # 66 bytes on the wire per share
ID_BYTES = 4  # client ids travel as 4-byte unsigned integers
KEY_BYTES = 32  # X25519 public keys, private keys and seeds
MAX_MODULUS_BITS = 62
_SECURE_STREAM = 6  # random stream id of the protocol in a run (fedlab.steps: 1, 2, 4, 5)
PHASES = ("advertise_keys", "share_keys", "masked_input", "unmasking")


class SecureAggregationAborted(RuntimeError):
    """The server refuses to unmask: fewer than ``threshold`` clients are left in the round."""


# -- quantisation ------------------------------------------------------------------------------


def _step(clip: float, bits: int) -> float:
    # 2^bits − 1 levels (an odd number), so 0 is a level: an unchanged weight is sent exactly
    # (with 2^bits levels every 0 would round the same way, a bias shared by all clients)
    return 2.0 * clip / (2**bits - 2)


def quantize(vector: object, clip: float = 1.0, bits: int = 16) -> np.ndarray:
    """Map a float vector in ``[-clip, clip]`` to integers in ``[0, 2^bits − 2]`` (uint64).

    Deterministic rounding to the nearest of the ``2^bits − 1`` levels ``q · step − clip``,
    ``step = 2·clip / (2^bits − 2)``: an odd number of levels, so 0 is one of them. Values
    outside ``[-clip, clip]`` (or NaN) raise.

    Example:
        >>> quantize([-1.0, 0.0, 1.0], clip=1.0, bits=2)
        array([0, 1, 2], dtype=uint64)
    """
    clip = check_float("clip", clip, low=0.0, low_inclusive=False)
    bits = check_int("bits", bits, low=2, high=32)
    x = np.asarray(vector, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"vector must be 1-D (flatten the update first), got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(np.abs(x) > clip):
        bad = float(x[~(np.abs(x) <= clip)][0])
        raise ValueError(
            f"vector values must be finite and in [-clip, clip] = [{-clip:g}, {clip:g}], "
            f"got {bad!r}; clip the update first (np.clip)"
        )
    levels = np.rint((x + clip) / _step(clip, bits))
    return np.clip(levels, 0, 2**bits - 2).astype(np.uint64)


def dequantize(sum_int: object, num_clients: int, clip: float = 1.0, bits: int = 16) -> np.ndarray:
    """Turn the integer sum of ``num_clients`` quantised vectors back into a float sum.

    Each level ``q`` stands for ``q · step − clip``, so a sum of m levels stands for
    ``Σq · step − m · clip``.

    Example:
        >>> q = quantize([-1.0, 1.0], bits=2) + quantize([1.0, 1.0], bits=2)
        >>> q, dequantize(q, num_clients=2, bits=2)
        (array([2, 4], dtype=uint64), array([0., 2.]))
    """
    num_clients = check_int("num_clients", num_clients, low=0)
    clip = check_float("clip", clip, low=0.0, low_inclusive=False)
    bits = check_int("bits", bits, low=2, high=32)
    q = np.asarray(sum_int, dtype=np.uint64).astype(np.float64)
    return q * _step(clip, bits) - num_clients * clip


def quantization_error_bound(num_clients: int, clip: float = 1.0, bits: int = 16) -> float:
    """Largest gap per coordinate between the dequantised sum and the float sum: ``m · step / 2``.

    Example:
        >>> quantization_error_bound(3, clip=1.0, bits=2)
        1.5
    """
    num_clients = check_int("num_clients", num_clients, low=0)
    return (
        num_clients * _step(check_float("clip", clip, low=0.0), check_int("bits", bits, 2, 32)) / 2
    )


def modulus_bits(num_clients: int, bits: int) -> int:
    """k = bits + ceil(log2 n): the sum of n values below 2^bits is below 2^k, so it never wraps.

    Example:
        >>> modulus_bits(10, 16)
        20
    """
    num_clients = check_int("num_clients", num_clients, low=1)
    bits = check_int("bits", bits, low=2, high=32)
    k = bits + math.ceil(math.log2(num_clients))
    if k > MAX_MODULUS_BITS:
        raise ValueError(
            f"bits + ceil(log2 num_clients) must be at most {MAX_MODULUS_BITS}, got {k}"
        )
    return k


def _mod(vector: np.ndarray, k: int) -> np.ndarray:
    return vector & np.uint64(2**k - 1)


# -- primitives: key agreement, PRG, share encryption -------------------------------------------


def agree(private_key: X25519PrivateKey, peer_public: bytes, info: bytes) -> bytes:
    """X25519 shared secret, then HKDF-SHA256 to 32 bytes; both ends get the same bytes.

    Example:
        >>> a = X25519PrivateKey.from_private_bytes(bytes(range(32)))
        >>> b = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
        >>> pk = lambda k: k.public_key().public_bytes_raw()
        >>> agree(a, pk(b), b"mask") == agree(b, pk(a), b"mask")
        True
    """
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(shared)


def prg(seed: bytes, length: int, k: int) -> np.ndarray:
    """Expand a 32-byte seed into ``length`` integers uniform mod 2^k (ChaCha20 key stream).

    Example:
        >>> v = prg(bytes(32), 4, k=8)
        >>> v.dtype, v.shape, bool(np.all(v < 256)), bool(np.all(v == prg(bytes(32), 4, k=8)))
        (dtype('uint64'), (4,), True, True)
    """
    if len(seed) != KEY_BYTES:
        raise ValueError(f"seed must be {KEY_BYTES} bytes, got {len(seed)}")
    stream = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    raw = stream.update(bytes(8 * length))
    return _mod(np.frombuffer(raw, dtype="<u8").astype(np.uint64), k)


MASK_INFO = b"fedlab secure aggregation: pairwise mask seed"
ENCRYPTION_INFO = b"fedlab secure aggregation: share encryption key"


def _new_private_key(rng: np.random.Generator) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(rng.bytes(KEY_BYTES))


def _public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


# -- Shamir secret sharing over GF(p) ----------------------------------------------------------


def _random_field_element(rng: np.random.Generator) -> int:
    while True:  # rejection sampling: uniform in [0, p); only the value p itself is redrawn
        value = int.from_bytes(rng.bytes(SHARE_BYTES), "little") & (2**521 - 1)
        if value < PRIME:
            return value


def shamir_split(
    secret: int, threshold: int, num_shares: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Split ``secret`` (an int in ``[0, p)``) into shares ``(x, f(x))`` for ``x = 1..num_shares``.

    ``f`` is a random polynomial of degree ``threshold − 1`` with ``f(0) = secret``: any
    ``threshold`` shares determine it, fewer say nothing about the secret.

    Example:
        >>> shares = shamir_split(42, threshold=2, num_shares=3, rng=np.random.default_rng(0))
        >>> shamir_reconstruct(shares[1:], threshold=2)
        42
    """
    threshold = check_int("threshold", threshold, low=1)
    num_shares = check_int("num_shares", num_shares, low=threshold)
    if isinstance(secret, bool) or not isinstance(secret, int) or not 0 <= secret < PRIME:
        raise ValueError(f"secret must be an integer in [0, 2^521 - 1), got {secret!r}")
    coefficients = [secret] + [_random_field_element(rng) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, num_shares + 1):
        y = 0
        for c in reversed(coefficients):  # Horner's rule
            y = (y * x + c) % PRIME
        shares.append((x, y))
    return shares


def shamir_reconstruct(shares: Sequence[tuple[int, int]], threshold: int) -> int:
    """Rebuild the secret f(0) from at least ``threshold`` shares by Lagrange interpolation.

    Uses the first ``threshold`` shares; fewer raise ``ValueError``. (Interpolating ``t − 1``
    shares of a degree ``t − 1`` polynomial, i.e. calling with a too-small ``threshold``,
    returns an unrelated field element.)

    Example:
        >>> shamir_reconstruct([(1, 5), (2, 8)], threshold=2)  # f(x) = 2 + 3x
        2
    """
    threshold = check_int("threshold", threshold, low=1)
    if len(shares) < threshold:
        raise ValueError(
            f"need at least threshold = {threshold} shares to reconstruct, got {len(shares)}"
        )
    points = list(shares)[:threshold]
    xs = [x for x, _ in points]
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise ValueError(f"share x-coordinates must be distinct and in [1, p), got {xs}")
    secret = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    return secret


# -- the protocol: configuration, client, server ------------------------------------------------


@dataclass(frozen=True)
class RoundConfig:
    """What every party knows before a round starts.

    Attributes:
        client_ids: the clients in the round, sorted (position i has Shamir point x = i + 1).
        threshold: t, the number of shares needed to rebuild a secret.
        vector_length: m, the length of each (flattened) update.
        modulus_bits: k; all vectors live in the integers mod 2^k.

    Example:
        >>> RoundConfig((0, 1, 2), threshold=2, vector_length=4, modulus_bits=10).shamir_x(2)
        3
    """

    client_ids: tuple[int, ...]
    threshold: int
    vector_length: int
    modulus_bits: int

    def shamir_x(self, client_id: int) -> int:
        """The Shamir evaluation point of ``client_id``."""
        return self.client_ids.index(client_id) + 1


def _pack_ids(u: int, v: int) -> bytes:
    return u.to_bytes(ID_BYTES, "big") + v.to_bytes(ID_BYTES, "big")


class Client:
    """One client's side of the protocol; its attributes are the state it keeps between rounds.

    Example:
        >>> config = RoundConfig((0, 1), threshold=2, vector_length=3, modulus_bits=9)
        >>> c_pk, s_pk = Client(0, config, np.random.default_rng(0)).advertise_keys()
        >>> len(c_pk), len(s_pk)
        (32, 32)
    """

    def __init__(self, client_id: int, config: RoundConfig, rng: np.random.Generator) -> None:
        self.id = client_id
        self.config = config
        self.rng = rng
        self.c_sk: X25519PrivateKey | None = None
        self.s_sk: X25519PrivateKey | None = None
        self.public_keys: dict[int, tuple[bytes, bytes]] = {}
        self.self_seed: bytes | None = None  # b_u
        self.ciphertexts: dict[int, bytes] = {}  # sender -> encrypted shares meant for me

    # Round 0
    def advertise_keys(self) -> tuple[bytes, bytes]:
        """Make the two key pairs; return ``(c_pk, s_pk)`` for the server to broadcast."""
        self.c_sk, self.s_sk = _new_private_key(self.rng), _new_private_key(self.rng)
        return _public_bytes(self.c_sk), _public_bytes(self.s_sk)

    def _share_key(self, other: int) -> bytes:
        return agree(self.c_sk, self.public_keys[other][0], ENCRYPTION_INFO)

    # Round 1
    def share_keys(self, public_keys: Mapping[int, tuple[bytes, bytes]]) -> dict[int, bytes]:
        """Draw ``b_u``; Shamir-share ``b_u`` and ``s_sk``; return recipient -> ciphertext.

        The share for myself is kept too (as if sent to myself) so every client holds n shares.
        """
        t, n = self.config.threshold, len(self.config.client_ids)
        self.public_keys = dict(public_keys)
        self.self_seed = self.rng.bytes(KEY_BYTES)
        b_shares = shamir_split(int.from_bytes(self.self_seed, "little"), t, n, self.rng)
        s_secret = int.from_bytes(self.s_sk.private_bytes_raw(), "little")
        s_shares = shamir_split(s_secret, t, n, self.rng)
        out = {}
        for v, (_, b_share), (_, s_share) in zip(
            self.config.client_ids, b_shares, s_shares, strict=True
        ):
            plaintext = (
                _pack_ids(self.id, v)
                + b_share.to_bytes(SHARE_BYTES, "little")
                + s_share.to_bytes(SHARE_BYTES, "little")
            )
            nonce = self.id.to_bytes(
                12, "big"
            )  # key k_uv is fresh per round; one message per direction
            out[v] = AESGCM(self._share_key(v)).encrypt(nonce, plaintext, None)
        return out

    def pairwise_seed(self, other: int) -> bytes:
        """s_uv: the mask seed this client shares with ``other`` (``s_uv == s_vu``)."""
        return agree(self.s_sk, self.public_keys[other][1], MASK_INFO)

    # Round 2
    def masked_input(self, x: np.ndarray, ciphertexts: Mapping[int, bytes]) -> np.ndarray:
        """Keep the ciphertexts addressed to me; return ``y_u`` for quantised input ``x``."""
        self.ciphertexts = dict(ciphertexts)
        return mask_input(
            x,
            self.id,
            self.self_seed,
            {v: self.pairwise_seed(v) for v in self.public_keys if v != self.id},
            self.config.modulus_bits,
        )

    # Round 3
    def unmask(self, sent_input: Collection[int]) -> dict[int, int]:
        """Given U3 (who sent ``y``): my share of ``b_u`` for u in U3, of ``s_sk_v`` for the rest.

        Never both for the same client, so the server cannot strip a survivor's masks alone.
        """
        shares = {}
        for u, ciphertext in self.ciphertexts.items():
            nonce = u.to_bytes(12, "big")
            plaintext = AESGCM(self._share_key(u)).decrypt(nonce, ciphertext, None)
            if plaintext[: 2 * ID_BYTES] != _pack_ids(u, self.id):
                raise ValueError(f"client {self.id} got a share not addressed from {u} to it")
            body = plaintext[2 * ID_BYTES :]
            b_share = int.from_bytes(body[:SHARE_BYTES], "little")
            s_share = int.from_bytes(body[SHARE_BYTES:], "little")
            shares[u] = b_share if u in sent_input else s_share
        return shares


def mask_input(
    x: np.ndarray,
    client_id: int,
    self_seed: bytes,
    pairwise_seeds: Mapping[int, bytes],
    k: int,
) -> np.ndarray:
    """``y_u = x_u + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv)`` mod 2^k.

    Example:
        >>> y = mask_input(np.array([1, 2], dtype=np.uint64), 0, bytes(32), {}, k=8)
        >>> bool(np.all(y == (prg(bytes(32), 2, k=8) + np.array([1, 2], dtype=np.uint64)) % 256))
        True
    """
    y = x.astype(np.uint64) + prg(self_seed, len(x), k)
    for v, seed in pairwise_seeds.items():
        mask = prg(seed, len(x), k)
        y = y + mask if v > client_id else y - mask
    return _mod(y, k)


class Server:
    """The server's side: it routes messages, checks them, and unmasks the sum.

    Example:
        >>> server = Server(RoundConfig((0, 1), threshold=2, vector_length=2, modulus_bits=3))
        >>> server.receive_masked_input(5, np.zeros(2, dtype=np.uint64))
        Traceback (most recent call last):
        ...
        ValueError: client_id 5 is not in this round (known ids: [0, 1])
    """

    def __init__(self, config: RoundConfig) -> None:
        self.config = config
        self.public_keys: dict[int, tuple[bytes, bytes]] = {}  # U1
        self.shared: set[int] = set()  # U2: clients whose encrypted shares arrived
        self.masked: dict[int, np.ndarray] = {}  # U3 -> y_u: all the server sees of the inputs
        self.shares: dict[int, dict[int, int]] = {}  # U5: sender -> (owner -> share)

    def _check_id(self, client_id: object) -> int:
        if client_id not in self.config.client_ids:
            raise ValueError(
                f"client_id {client_id!r} is not in this round "
                f"(known ids: {list(self.config.client_ids)})"
            )
        return int(client_id)

    def _require_threshold(self, count: int, what: str) -> None:
        if count < self.config.threshold:
            raise SecureAggregationAborted(
                f"only {count} client(s) {what}, fewer than the threshold t = "
                f"{self.config.threshold}; the server refuses to unmask (at most n - t = "
                f"{len(self.config.client_ids) - self.config.threshold} may drop out)"
            )

    def broadcast_keys(self, keys: Mapping[int, tuple[bytes, bytes]]) -> dict[int, tuple]:
        """Round 0: collect ``(c_pk, s_pk)`` from each client and send the list to everyone."""
        for u, (c_pk, s_pk) in keys.items():
            self._check_id(u)
            if len(c_pk) != KEY_BYTES or len(s_pk) != KEY_BYTES:
                raise ValueError(f"client {u} sent public keys that are not {KEY_BYTES} bytes")
        self._require_threshold(len(keys), "advertised keys")
        self.public_keys = dict(keys)
        return dict(self.public_keys)

    def route_shares(self, outgoing: Mapping[int, Mapping[int, bytes]]) -> dict[int, dict]:
        """Round 1: forward each encrypted share to its recipient (the server cannot read them)."""
        incoming: dict[int, dict[int, bytes]] = {v: {} for v in outgoing}
        for u, messages in outgoing.items():
            self._check_id(u)
            for v, ciphertext in messages.items():
                if v in incoming:
                    incoming[v][u] = ciphertext
        self._require_threshold(len(outgoing), "shared their keys")
        self.shared = set(outgoing)
        return incoming

    def receive_masked_input(self, client_id: object, masked: object) -> None:
        """Round 2: accept ``y_u`` after checking the sender, the length and the range mod 2^k."""
        u = self._check_id(client_id)
        y = np.asarray(masked)
        m, k = self.config.vector_length, self.config.modulus_bits
        if y.shape != (m,):
            raise ValueError(
                f"masked input from client {u} must have length {m}, got shape {y.shape}"
            )
        if y.dtype.kind not in "ui" or np.any(y < 0) or np.any(y >= 2**k):
            raise ValueError(
                f"masked input from client {u} must hold integers in [0, 2^{k}), "
                f"got dtype {y.dtype} with range [{y.min()}, {y.max()}]"
            )
        self.masked[u] = y.astype(np.uint64)

    def close_masked_input(self) -> tuple[int, ...]:
        """End of round 2: U3, the clients whose ``y`` arrived; aborts if fewer than t."""
        self._require_threshold(len(self.masked), "sent masked input")
        return tuple(sorted(self.masked))

    def receive_shares(self, client_id: object, shares: Mapping[int, int]) -> None:
        """Round 3: accept a surviving client's shares (owner id -> share value)."""
        v = self._check_id(client_id)
        for u, share in shares.items():
            self._check_id(u)
            if not 0 <= share < PRIME:
                raise ValueError(f"share from client {v} for client {u} is not in [0, p)")
        self.shares[v] = dict(shares)

    def _rebuild(self, owner: int) -> int:
        points = [
            (self.config.shamir_x(v), shares[owner])
            for v, shares in sorted(self.shares.items())
            if owner in shares
        ]
        self._require_threshold(len(points), f"sent a share for client {owner}")
        return shamir_reconstruct(points, self.config.threshold)

    def unmask(self) -> np.ndarray:
        """Round 3: rebuild ``b_u`` (u in U3) and ``s_sk_v`` (v dropped); return Σ x_u mod 2^k."""
        self._require_threshold(len(self.shares), "survived to the unmasking round")
        m, k = self.config.vector_length, self.config.modulus_bits
        total = np.zeros(m, dtype=np.uint64)
        for y in self.masked.values():
            total = total + y
        for u in self.masked:  # remove self masks PRG(b_u)
            self_seed = self._rebuild(u).to_bytes(KEY_BYTES, "little")
            total = total - prg(self_seed, m, k)
        for v in sorted(self.shared - set(self.masked)):  # remove masks shared with dropped v
            s_sk = X25519PrivateKey.from_private_bytes(
                self._rebuild(v).to_bytes(KEY_BYTES, "little")
            )
            for u in self.masked:
                mask = prg(agree(s_sk, self.public_keys[u][1], MASK_INFO), m, k)
                total = total - mask if v > u else total + mask  # y_u added +mask iff v > u
        return _mod(total, k)


# -- the whole round ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SecureSumResult:
    """The outcome of one secure-aggregation round.

    Attributes:
        sum_int: Σ quantize(x_u) over ``summed_ids``, exact, as uint64 (below 2^modulus_bits).
        sum: the dequantised float64 sum (within :attr:`error_bound` of the float sum).
        summed_ids: clients whose masked input reached the server (U3): their updates are summed.
        dropped_ids: clients that dropped before sending masked input (not in the sum).
        late_dropped_ids: clients that sent masked input, then dropped before unmasking.
        masked: client id -> ``y_u``, everything the server saw of the inputs.
        threshold, clip, bits, modulus_bits: the settings used (k = ``modulus_bits``).
        client_bytes_sent: client id -> payload bytes it uploaded over all rounds.
        client_bytes_received: client id -> payload bytes it downloaded.
        server_bytes_sent, server_bytes_received: the server's payload bytes.
        client_seconds: phase -> mean seconds one client spent computing in that phase.
        server_seconds: phase -> seconds the server spent computing in that phase.

    Example:
        >>> r = secure_sum({0: [0.5, -1.0], 1: [0.25, 0.5], 2: [0.0, 0.25]}, bits=8, seed=0)
        >>> r.summed_ids, r.modulus_bits, r.sum_int.dtype
        ((0, 1, 2), 10, dtype('uint64'))
        >>> bool(np.all(np.abs(r.sum - [0.75, -0.25]) <= r.error_bound))
        True
    """

    sum_int: np.ndarray
    sum: np.ndarray
    summed_ids: tuple[int, ...]
    dropped_ids: tuple[int, ...]
    late_dropped_ids: tuple[int, ...]
    masked: dict[int, np.ndarray]
    threshold: int
    clip: float
    bits: int
    modulus_bits: int
    client_bytes_sent: dict[int, int]
    client_bytes_received: dict[int, int]
    server_bytes_sent: int
    server_bytes_received: int
    client_seconds: dict[str, float] = field(default_factory=dict)
    server_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def error_bound(self) -> float:
        """``len(summed_ids) · step / 2``: the documented quantisation error per coordinate."""
        return quantization_error_bound(len(self.summed_ids), self.clip, self.bits)


def _check_updates(updates: object) -> dict[int, np.ndarray]:
    if isinstance(updates, Mapping):
        items = list(updates.items())
    elif isinstance(updates, Sequence) and not isinstance(updates, str | bytes):
        items = list(enumerate(updates))
    else:
        raise TypeError(
            f"updates must be a dict id -> vector or a list, got {type(updates).__name__}"
        )
    if len(items) < 2:
        raise ValueError(f"updates must hold at least 2 clients, got {len(items)}")
    checked = {}
    for client_id, vector in items:
        client_id = check_int("client id", client_id, low=0, high=2**32 - 1)
        x = np.asarray(vector, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"updates[{client_id}] must be a 1-D vector, got shape {x.shape}")
        checked[client_id] = x
    lengths = {cid: len(x) for cid, x in checked.items()}
    first = next(iter(checked))
    for cid, length in lengths.items():
        if length != lengths[first]:
            raise ValueError(
                f"updates[{cid}] has length {length} but updates[{first}] has length "
                f"{lengths[first]}; all updates must have the same length"
            )
    return dict(sorted(checked.items()))


def _check_ids(name: str, ids: Collection, known: Collection[int]) -> set[int]:
    ids = set(ids)
    unknown = sorted(i for i in ids if i not in known)
    if unknown:
        raise ValueError(
            f"{name} contains client id(s) {unknown} that are not in updates (known ids: {sorted(known)})"
        )
    return ids


def _packed_bytes(length: int, k: int) -> int:
    return (length * k + 7) // 8


def secure_sum(
    updates: Mapping[int, object] | Sequence[object],
    *,
    threshold: int | None = None,
    clip: float = 1.0,
    bits: int = 16,
    dropouts: Collection[int] = (),
    late_dropouts: Collection[int] = (),
    seed: int = 0,
) -> SecureSumResult:
    """Run one round of secure aggregation on flattened client updates; return the unmasked sum.

    ``updates`` maps client id (an int in ``[0, 2^32)``) to a 1-D float vector in
    ``[-clip, clip]`` (a list means ids 0, 1, …). ``dropouts`` drop after ``ShareKeys``, before
    sending their masked input (their update is lost); ``late_dropouts`` send it, then drop
    before ``Unmasking`` (their update is still summed). If fewer than ``threshold`` clients are
    left at any round, :class:`SecureAggregationAborted` is raised. ``threshold`` defaults to
    ``n // 2 + 1`` and must be in ``[n // 2 + 1, n]``.

    For FedAvg, the engine can send ``n_u · Δ_u / max_count`` (clipped) and divide the sum by
    ``Σ n_u`` over ``result.summed_ids``.

    Example:
        >>> r = secure_sum([[0.5], [0.25], [-0.5], [1.0]], threshold=3, dropouts={3}, seed=1)
        >>> np.round(r.sum, 3), r.summed_ids, r.dropped_ids
        (array([0.25]), (0, 1, 2), (3,))
    """
    xs = _check_updates(updates)
    ids = tuple(xs)
    n = len(ids)
    if threshold is None:
        threshold = n // 2 + 1
    threshold = check_int("threshold", threshold, low=n // 2 + 1, high=n)
    clip = check_float("clip", clip, low=0.0, low_inclusive=False)
    bits = check_int("bits", bits, low=2, high=32)
    seed = check_int("seed", seed, low=0)
    dropouts = _check_ids("dropouts", dropouts, ids)
    late_dropouts = _check_ids("late_dropouts", late_dropouts, ids)
    if dropouts & late_dropouts:
        raise ValueError(
            f"a client cannot be in both dropouts and late_dropouts: {sorted(dropouts & late_dropouts)}"
        )
    quantised = {}
    for cid, x in xs.items():
        try:
            quantised[cid] = quantize(x, clip, bits)
        except ValueError as error:
            raise ValueError(f"updates[{cid}]: {error}") from None
    k = modulus_bits(n, bits)
    m = len(next(iter(xs.values())))
    config = RoundConfig(ids, threshold, m, k)

    rngs = np.random.default_rng(seed).spawn(n)
    clients = {cid: Client(cid, config, rng) for cid, rng in zip(ids, rngs, strict=True)}
    server = Server(config)
    sent = dict.fromkeys(ids, 0)
    received = dict.fromkeys(ids, 0)
    client_seconds = dict.fromkeys(PHASES, 0.0)
    server_seconds = dict.fromkeys(PHASES, 0.0)

    def on_clients(phase, participants, work):
        out = {}
        for cid in participants:
            start = time.perf_counter()
            out[cid] = work(clients[cid])
            client_seconds[phase] += (time.perf_counter() - start) / len(participants)
        return out

    def on_server(phase, work, *args):
        start = time.perf_counter()
        out = work(*args)
        server_seconds[phase] += time.perf_counter() - start
        return out

    # Round 0: AdvertiseKeys
    keys = on_clients("advertise_keys", ids, lambda c: c.advertise_keys())
    broadcast = on_server("advertise_keys", server.broadcast_keys, keys)
    for cid in ids:
        sent[cid] += 2 * KEY_BYTES
        received[cid] += len(broadcast) * (ID_BYTES + 2 * KEY_BYTES)

    # Round 1: ShareKeys
    outgoing = on_clients("share_keys", ids, lambda c: c.share_keys(broadcast))
    incoming = on_server("share_keys", server.route_shares, outgoing)
    for cid in ids:
        sent[cid] += sum(ID_BYTES + len(ct) for v, ct in outgoing[cid].items() if v != cid)
        received[cid] += sum(ID_BYTES + len(ct) for u, ct in incoming[cid].items() if u != cid)

    # Round 2: MaskedInputCollection (dropouts never send y)
    senders = [cid for cid in ids if cid not in dropouts]
    masked = on_clients(
        "masked_input", senders, lambda c: c.masked_input(quantised[c.id], incoming[c.id])
    )
    for cid, y in masked.items():
        on_server("masked_input", server.receive_masked_input, cid, y)
        sent[cid] += _packed_bytes(m, k)
    summed_ids = on_server("masked_input", server.close_masked_input)

    # Round 3: Unmasking (late dropouts never answer)
    survivors = [cid for cid in summed_ids if cid not in late_dropouts]
    shares = on_clients("unmasking", survivors, lambda c: c.unmask(summed_ids))
    for cid, owned in shares.items():
        on_server("unmasking", server.receive_shares, cid, owned)
        received[cid] += len(summed_ids) * ID_BYTES
        sent[cid] += len(owned) * (ID_BYTES + SHARE_BYTES)
    sum_int = on_server("unmasking", server.unmask)

    server_received = sum(sent.values())
    server_sent = sum(received.values())
    return SecureSumResult(
        sum_int=sum_int,
        sum=dequantize(sum_int, len(summed_ids), clip, bits),
        summed_ids=summed_ids,
        dropped_ids=tuple(sorted(dropouts)),
        late_dropped_ids=tuple(sorted(late_dropouts)),
        masked={cid: server.masked[cid] for cid in summed_ids},
        threshold=threshold,
        clip=clip,
        bits=bits,
        modulus_bits=k,
        client_bytes_sent=sent,
        client_bytes_received=received,
        server_bytes_sent=server_sent,
        server_bytes_received=server_received,
        client_seconds=client_seconds,
        server_seconds=server_seconds,
    )


# -- in a federated round: FedAvg through secure aggregation --------------------------------------


@dataclass(frozen=True)
class SecureAggregation:
    """Run every round's aggregation through :func:`secure_sum` (``simulate(secure_aggregation=...)``).

    Client k sends ``(n_k / n_max) · Δ_k``, flattened and clipped coordinate-wise to
    ``[-clip, clip]``; the server unmasks the sum and divides by ``Σ n_k / n_max`` over the
    clients whose input arrived: FedAvg's weighted mean, up to quantisation (and clipping, which
    :class:`SecureRound` counts). Each round a seeded ``dropout`` fraction of the clients drop
    after ``ShareKeys`` (their update is lost); fewer than ``t = max(n // 2 + 1,
    ceil(threshold · n))`` survivors and the server refuses: the round changes nothing.

    Attributes:
        clip: largest ``|coordinate|`` of a weighted update (> 0).
        bits: quantisation bits per coordinate, in [2, 32].
        dropout: fraction of a round's clients that drop before sending, in [0, 1).
        threshold: the Shamir threshold as a fraction of the round's clients, in [0.5, 1].

    Example:
        >>> SecureAggregation(dropout=0.2).threshold_for(10)
        6
    """

    clip: float = 1.0
    bits: int = 16
    dropout: float = 0.0
    threshold: float = 0.5

    def __post_init__(self):
        check_float("clip", self.clip, low=0.0, low_inclusive=False)
        check_int("bits", self.bits, low=2, high=32)
        check_float("dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False)
        check_float("threshold", self.threshold, low=0.5, high=1.0)

    def threshold_for(self, num_clients: int) -> int:
        """t for a round of ``num_clients`` clients."""
        return min(num_clients, max(num_clients // 2 + 1, math.ceil(self.threshold * num_clients)))

    def sum(self, vectors: Sequence[np.ndarray], received: ClientUpdates) -> Summed:
        """The summation stage of an aggregator (:mod:`fedlab.aggregators`): Σ_k x_k of the
        ``[K, ...]`` arrays ``vectors`` through :func:`secure_sum`.

        Each client's row is flattened and clipped coordinate-wise to ``[-clip, clip]``; a
        seeded ``dropout`` fraction drops before sending (stream ``(received.seed, round)``).
        Fewer than two clients, or fewer than the threshold left: the server refuses and the
        total is ``None``. The metrics are the RoundRecord's ``secure_dropped``,
        ``secure_aborted`` and ``clipped_fraction`` (of the coordinates).

        Example:
            >>> from fedlab.aggregators import ClientUpdates
            >>> received = ClientUpdates([np.zeros((2, 1))], [1, 1], client_ids=[3, 8])
            >>> [round(float(v), 4) for v in SecureAggregation().sum([np.array([[0.5], [0.25]])], received).total[0]]
            [0.75]
        """
        ids = [int(k) for k in received.client_ids]
        stream = np.random.SeedSequence([received.seed, _SECURE_STREAM, received.round_num])
        return self._sum(vectors, ids, int(stream.generate_state(1)[0]))

    def _sum(self, vectors: Sequence[np.ndarray], ids: list[int], seed: int) -> Summed:
        """:meth:`sum` with the protocol's own ``seed`` (keys, masks, who drops)."""
        from fedlab.aggregators import Summed

        if len(ids) < 2:  # one client's "sum" is its update: nothing to hide it among
            nothing = {"secure_dropped": (), "secure_aborted": True, "clipped_fraction": 0.0}
            return Summed(None, np.zeros(len(ids), bool), nothing, 0)
        shapes = [np.shape(v)[1:] for v in vectors]
        flat = np.concatenate([np.reshape(v, (len(ids), -1)) for v in vectors], axis=1)
        clipped_fraction = float(np.mean(np.abs(flat) > self.clip)) if flat.size else 0.0
        flat = np.clip(flat, -self.clip, self.clip)
        rng = np.random.default_rng(seed)
        num_dropped = int(np.floor(self.dropout * len(ids) + rng.random()))  # unbiased rounding
        dropped = tuple(sorted(int(k) for k in rng.choice(ids, size=num_dropped, replace=False)))
        metrics = {"secure_dropped": dropped, "clipped_fraction": clipped_fraction}
        try:
            result = secure_sum(
                dict(zip(ids, flat, strict=True)),
                threshold=self.threshold_for(len(ids)),
                clip=self.clip,
                bits=self.bits,
                dropouts=dropped,
                seed=seed,
            )
        except SecureAggregationAborted:
            return Summed(None, np.zeros(len(ids), bool), {**metrics, "secure_aborted": True}, 0)
        metrics["secure_aborted"] = False
        bytes_up = int(sum(result.client_bytes_sent.values()))
        summed = np.isin(ids, result.summed_ids)
        return Summed(unflatten(result.sum, shapes), summed, metrics, bytes_up)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "clip": self.clip,
            "bits": self.bits,
            "dropout": self.dropout,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class SecureRound:
    """What secure aggregation did in one round (for the History).

    Attributes:
        summed: clients whose updates are in the sum.
        dropped: clients that dropped before sending (their training is lost).
        aborted: fewer than the threshold survived; the server refused to unmask.
        bytes_up: payload bytes all clients uploaded (keys, shares, masked vectors).
        clipped_fraction: share of the sent coordinates that ``clip`` cut.
    """

    summed: tuple[int, ...]
    dropped: tuple[int, ...]
    aborted: bool
    bytes_up: int
    clipped_fraction: float


def secure_aggregate(
    settings: SecureAggregation,
    stacked_deltas: Sequence[np.ndarray],
    num_examples: Sequence[float],
    client_ids: Sequence[int],
    seed: int,
) -> tuple[list[np.ndarray] | None, SecureRound]:
    """FedAvg's weighted mean of ``stacked_deltas`` (one ``[K, ...]`` array per weight) computed
    through secure aggregation; ``None`` instead of the mean if the server had to refuse.

    Example:
        >>> mean, r = secure_aggregate(SecureAggregation(), [np.array([[0.5], [0.1]])], [1, 3], [4, 7], 0)
        >>> round(float(mean[0][0]), 4), r.summed
        (0.2, (4, 7))
    """
    ids = [int(k) for k in client_ids]
    counts = np.asarray(num_examples, np.float64)
    scale = counts / counts.max()
    weighted = [
        np.asarray(d, np.float64) * scale.reshape(-1, *[1] * (np.ndim(d) - 1))
        for d in stacked_deltas
    ]
    summed = settings._sum(weighted, ids, seed)
    aborted = summed.total is None
    info = SecureRound(
        tuple(int(k) for k in np.asarray(ids)[summed.included]),
        summed.metrics["secure_dropped"],
        aborted,
        summed.bytes_up or 0,
        summed.metrics["clipped_fraction"],
    )
    if aborted:
        return None, info
    denominator = scale[summed.included].sum()
    return [(t / denominator).astype(np.float32) for t in summed.total], info


# -- for the notebook: masks by hand, cost as n grows --------------------------------------------


@dataclass(frozen=True, eq=False)
class MaskBreakdown:
    """Every mask of a small round, to check by hand that the pairwise masks cancel.

    Attributes:
        modulus_bits: k; every vector is mod 2^k.
        inputs: client id -> x_u (integers).
        self_masks: client id -> PRG(b_u).
        pairwise_masks: (u, v) with u < v -> PRG(s_uv), added by u and subtracted by v.
        masked: client id -> y_u, what the server sees.

    Example:
        >>> demo = mask_breakdown([[1, 2], [3, 4], [5, 6]], modulus_bits=8, seed=0)
        >>> sorted(demo.pairwise_masks)
        [(0, 1), (0, 2), (1, 2)]
        >>> demo.unmasked_sum()
        array([ 9, 12], dtype=uint64)
    """

    modulus_bits: int
    inputs: dict[int, np.ndarray]
    self_masks: dict[int, np.ndarray]
    pairwise_masks: dict[tuple[int, int], np.ndarray]
    masked: dict[int, np.ndarray]

    def masked_sum(self) -> np.ndarray:
        """Σ y_u mod 2^k: the pairwise masks have cancelled, the self masks have not."""
        return _mod(sum(self.masked.values(), np.uint64(0)), self.modulus_bits)

    def unmasked_sum(self) -> np.ndarray:
        """Σ y_u − Σ PRG(b_u) mod 2^k = Σ x_u (what the server gets once it rebuilds the b_u)."""
        masks = sum(self.self_masks.values(), np.uint64(0))
        return _mod(self.masked_sum() - masks, self.modulus_bits)


def mask_breakdown(
    inputs: Sequence[Sequence[int]], modulus_bits: int = 8, seed: int = 0
) -> MaskBreakdown:
    """Mask small integer inputs (ids 0, 1, …) with the protocol's real keys, PRG and signs.

    Example:
        >>> demo = mask_breakdown([[10], [20], [30]], modulus_bits=8, seed=1)
        >>> int(demo.masked[0][0]) == (10 + int(demo.self_masks[0][0])
        ...     + int(demo.pairwise_masks[0, 1][0]) + int(demo.pairwise_masks[0, 2][0])) % 256
        True
    """
    k = check_int("modulus_bits", modulus_bits, low=1, high=MAX_MODULUS_BITS)
    xs = {u: np.asarray(x) for u, x in enumerate(inputs)}
    for u, x in xs.items():
        if x.ndim != 1 or x.dtype.kind not in "ui" or np.any(x < 0) or np.any(x >= 2**k):
            raise ValueError(f"inputs[{u}] must be a 1-D vector of integers in [0, 2^{k})")
    lengths = {len(x) for x in xs.values()}
    if len(xs) < 2 or len(lengths) != 1:
        raise ValueError("inputs must hold at least 2 vectors, all of the same length")
    m = lengths.pop()
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    s_sk = {u: _new_private_key(rng) for u in xs}
    self_seeds = {u: rng.bytes(KEY_BYTES) for u in xs}
    pair_seeds = {
        (u, v): agree(s_sk[u], _public_bytes(s_sk[v]), MASK_INFO) for u in xs for v in xs if u != v
    }
    return MaskBreakdown(
        modulus_bits=k,
        inputs={u: x.astype(np.uint64) for u, x in xs.items()},
        self_masks={u: prg(self_seeds[u], m, k) for u in xs},
        pairwise_masks={(u, v): prg(pair_seeds[u, v], m, k) for u, v in pair_seeds if u < v},
        masked={
            u: mask_input(
                x.astype(np.uint64),
                u,
                self_seeds[u],
                {v: pair_seeds[u, v] for v in xs if v != u},
                k,
            )
            for u, x in xs.items()
        },
    )


@dataclass(frozen=True)
class OverheadRow:
    """Measured cost of one secure-aggregation round with ``num_clients`` clients.

    Attributes:
        num_clients: n.
        vector_length: m, parameters per update.
        num_dropouts: clients that dropped before sending masked input.
        plain_bytes: what a client sends without secure aggregation (m float32 values).
        client_bytes_sent, client_bytes_received: mean payload bytes per client.
        server_bytes_sent, server_bytes_received: the server's payload bytes.
        client_seconds: mean computation time of one client, all rounds.
        server_seconds: the server's computation time, all rounds.

    Example:
        >>> row = measure_overhead([4], vector_length=10)[0]
        >>> row.num_clients, row.plain_bytes, row.client_bytes_sent
        (4, 40, 847.0)
    """

    num_clients: int
    vector_length: int
    num_dropouts: int
    plain_bytes: int
    client_bytes_sent: float
    client_bytes_received: float
    server_bytes_sent: int
    server_bytes_received: int
    client_seconds: float
    server_seconds: float


def measure_overhead(
    num_clients: Sequence[int] = (5, 10, 20, 50),
    vector_length: int = 1000,
    dropout_fraction: float = 0.0,
    bits: int = 16,
    seed: int = 0,
) -> list[OverheadRow]:
    """Run :func:`secure_sum` on random updates for each n and return the measured costs.

    ``dropout_fraction`` of the clients (rounded down, at most ``n − t`` with the default
    threshold) drop before sending masked input, which makes the server's work grow.

    Example:
        >>> [row.num_clients for row in measure_overhead([3, 5], vector_length=8)]
        [3, 5]
    """
    vector_length = check_int("vector_length", vector_length, low=1)
    dropout_fraction = check_float("dropout_fraction", dropout_fraction, low=0.0, high=0.5)
    rows = []
    for n in num_clients:
        n = check_int("num_clients", n, low=2)
        rng = np.random.default_rng(seed)
        updates = list(rng.uniform(-1.0, 1.0, size=(n, vector_length)))
        num_drop = min(int(dropout_fraction * n), n - (n // 2 + 1))
        result = secure_sum(updates, bits=bits, dropouts=range(n - num_drop, n), seed=seed)
        rows.append(
            OverheadRow(
                num_clients=n,
                vector_length=vector_length,
                num_dropouts=num_drop,
                plain_bytes=4 * vector_length,
                client_bytes_sent=float(np.mean(list(result.client_bytes_sent.values()))),
                client_bytes_received=float(np.mean(list(result.client_bytes_received.values()))),
                server_bytes_sent=result.server_bytes_sent,
                server_bytes_received=result.server_bytes_received,
                client_seconds=sum(result.client_seconds.values()),
                server_seconds=sum(result.server_seconds.values()),
            )
        )
    return rows


# -- for the notebook: small helpers that keep its cells short ---------------------------------


@dataclass(frozen=True)
class WeightGaps:
    """How far secure-aggregation weights are from plain FedAvg's after the same round.

    Attributes:
        max_gap: the largest ``|plain − secure|`` over every weight.
        num_unchanged: weights plain FedAvg left exactly at their start value.
        mean_gap_unchanged: the mean gap over those weights (nan if there are none).
        num_changed: the other weights.
        mean_gap_changed: the mean gap over the other weights (nan if there are none).
    """

    max_gap: float
    num_unchanged: int
    mean_gap_unchanged: float
    num_changed: int
    mean_gap_changed: float


def weight_gaps(
    plain: Sequence[object], secure: Sequence[object], start: Sequence[object]
) -> WeightGaps:
    """Compare two lists of weight arrays, split by whether plain FedAvg moved each weight.

    Example:
        >>> gaps = weight_gaps([np.array([1.0, 2.0])], [np.array([1.0, 2.5])], [np.array([1.0, 0.0])])
        >>> gaps.max_gap, gaps.num_unchanged, gaps.mean_gap_unchanged, gaps.mean_gap_changed
        (0.5, 1, 0.0, 0.5)
    """
    if not len(plain) == len(secure) == len(start) or len(plain) == 0:
        raise ValueError("plain, secure and start must be non-empty lists of the same length")
    gaps, unchanged = [], []
    for i, (p, s, w) in enumerate(zip(plain, secure, start, strict=True)):
        p, s, w = np.asarray(p, float), np.asarray(s, float), np.asarray(w, float)
        if not p.shape == s.shape == w.shape:
            raise ValueError(f"plain[{i}], secure[{i}] and start[{i}] must have the same shape")
        gaps.append(np.abs(p - s).ravel())
        unchanged.append((p == w).ravel())
    gap, same = np.concatenate(gaps), np.concatenate(unchanged)

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else math.nan

    return WeightGaps(
        float(gap.max()), int(same.sum()), mean(gap[same]), int((~same).sum()), mean(gap[~same])
    )


def runs_table(runs: Mapping[str, object], baseline: str) -> str:
    """One line per run of ``fedlab.simulate``: final accuracy, the largest accuracy gap to
    ``runs[baseline]``, clients summed per round, aborted rounds and kB sent up in round 1.

    Each run needs ``test_accuracy``, ``bytes_up`` and ``rounds`` (records with ``clients``,
    ``secure_dropped`` and ``secure_aborted``), as a ``History`` has.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> record = NS(clients=(0, 1, 2), secure_dropped=(2,), secure_aborted=False)
        >>> run = NS(test_accuracy=np.array([0.5, 0.75]), bytes_up=[3000], rounds=[record] * 2)
        >>> print(runs_table({"a": run}, "a"))
        run                    final acc max |Δacc| summed/round aborted   kB up
        a                         0.7500     0.0000          2.0       0     3.0
    """
    if baseline not in runs:
        raise ValueError(f"baseline must be one of the runs {list(runs)}, got {baseline!r}")
    base = np.asarray(runs[baseline].test_accuracy)
    lines = [
        f"{'run':<22}{'final acc':>10}{'max |Δacc|':>11}{'summed/round':>13}"
        f"{'aborted':>8}{'kB up':>8}"
    ]
    for name, h in runs.items():
        accuracy = np.asarray(h.test_accuracy)
        summed = np.mean([len(r.clients) - len(r.secure_dropped) for r in h.rounds])
        aborted = sum(bool(r.secure_aborted) for r in h.rounds)
        lines.append(
            f"{name:<22}{accuracy[-1]:>10.4f}{np.abs(accuracy - base).max():>11.4f}"
            f"{summed:>13.1f}{aborted:>8}{h.bytes_up[0] / 1e3:>8.1f}"
        )
    return "\n".join(lines)


def overhead_table(rows: Sequence[OverheadRow], rows_dropped: Sequence[OverheadRow]) -> str:
    """The rows of two :func:`measure_overhead` calls side by side: bytes per client and for
    the server with everyone present, and the server's bytes with dropouts.

    Example:
        >>> print(overhead_table(measure_overhead([4], 10), measure_overhead([4], 10, 0.25)))
           n  plain B  client sent  received  × plain  server recv kB  dropped  server recv kB
           4       40          847       768    21.18             3.4        1             3.1
    """
    if len(rows) != len(rows_dropped):
        raise ValueError("rows and rows_dropped must have the same length (one per n)")
    lines = [
        f"{'n':>4}{'plain B':>9}{'client sent':>13}{'received':>10}{'× plain':>9}"
        f"{'server recv kB':>16}{'dropped':>9}{'server recv kB':>16}"
    ]
    for row, drop in zip(rows, rows_dropped, strict=True):
        if row.num_clients != drop.num_clients:
            raise ValueError("rows and rows_dropped must be for the same numbers of clients")
        lines.append(
            f"{row.num_clients:>4}{row.plain_bytes:>9}{row.client_bytes_sent:>13,.0f}"
            f"{row.client_bytes_received:>10,.0f}{row.client_bytes_sent / row.plain_bytes:>9.2f}"
            f"{row.server_bytes_received / 1e3:>16.1f}{drop.num_dropouts:>9}"
            f"{drop.server_bytes_received / 1e3:>16.1f}"
        )
    return "\n".join(lines)


def unflatten(vector: object, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Cut a flat vector back into arrays of the given shapes (the inverse of concatenating
    the raveled arrays).

    Example:
        >>> [part.tolist() for part in unflatten(np.arange(5), [(2, 2), (1,)])]
        [[[0, 1], [2, 3]], [4]]
    """
    vector = np.asarray(vector)
    sizes = [math.prod(shape) for shape in shapes]
    if vector.ndim != 1 or len(vector) != sum(sizes):
        raise ValueError(f"vector must be 1-D with {sum(sizes)} values (the shapes' total)")
    parts = np.split(vector, np.cumsum(sizes)[:-1])
    return [part.reshape(shape) for part, shape in zip(parts, shapes, strict=True)]


def distributed_dp_sum(
    vectors: Sequence[object],
    clip_norm: float,
    noise_multiplier: float,
    rng: np.random.Generator,
    bits: int = 16,
    seed: int = 0,
) -> np.ndarray:
    """Distributed DP through :func:`secure_sum`: each client clips its vector to L2 norm
    ``clip_norm`` and adds Gaussian noise of standard deviation ``noise_multiplier · clip_norm
    / √n`` before masking, so the sum carries noise of standard deviation
    ``noise_multiplier · clip_norm`` and the server never sees a noise-free quantity.

    The quantisation range is the largest noisy coordinate. ``rng`` draws the noise (client 0's
    first); ``seed`` fixes the protocol's keys and masks.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> total = distributed_dp_sum([[3.0, 4.0], [0.0, 0.5]], 1.0, 0.0, rng)
        >>> np.round(total, 3)
        array([0.6, 1.3])
    """
    clip_norm = check_float("clip_norm", clip_norm, low=0.0)
    if clip_norm == 0.0:
        raise ValueError("clip_norm must be > 0")
    noise_multiplier = check_float("noise_multiplier", noise_multiplier, low=0.0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    vectors = [np.asarray(v, float) for v in vectors]
    if len(vectors) < 2:
        raise ValueError("vectors must hold at least 2 client vectors")
    clipped = [v * min(1.0, clip_norm / np.linalg.norm(v)) for v in vectors]
    std = noise_multiplier * clip_norm / np.sqrt(len(vectors))
    noisy = [v + rng.normal(0.0, std, v.shape) for v in clipped]
    wide = float(max(np.abs(v).max() for v in noisy))
    return secure_sum(noisy, clip=wide, bits=bits, seed=seed).sum
