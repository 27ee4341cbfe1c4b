"""Uplink codecs: exact round trips, unbiased quantisation within its variance bound, measured
message sizes, Top-k selection and error-feedback accounting."""

import json
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedlab.compression import (
    Codec,
    Encoded,
    ErrorFeedback,
    Float16,
    Identity,
    RandomRotation,
    StochasticQuantizer,
    TopK,
    _pack,
    _unpack,
)

SETTINGS = settings(max_examples=40, deadline=None)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
finite32 = st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False)


@st.composite
def updates(draw, max_arrays=4):
    """A list of float32 arrays of different shapes (scalars and empty arrays included)."""
    drawn = draw(st.lists(shapes, min_size=0, max_size=max_arrays))
    return [draw(hnp.arrays(np.float32, shape, elements=finite32)) for shape in drawn]


def all_codecs():
    return [
        Identity(),
        Float16(),
        StochasticQuantizer(bits=8, block_size=16),
        StochasticQuantizer(bits=4, block_size=5),
        StochasticQuantizer(bits=3, block_size=7),
        StochasticQuantizer(bits=1, block_size=1),
        StochasticQuantizer(bits=16),
        TopK(0.3),
        TopK(1.0),
        RandomRotation(StochasticQuantizer(bits=4, block_size=8), rotation_seed=1),
        RandomRotation(TopK(0.5)),
    ]


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0, np.float32)


# -- every codec ---------------------------------------------------------------------------------


@SETTINGS
@given(update=updates(), codec=st.sampled_from(all_codecs()), seed=st.integers(0, 2**32 - 1))
def test_every_codec_keeps_shapes_and_measures_bytes(update, codec, seed):
    encoded = codec.encode(update, seed=seed)
    decoded = codec.decode(encoded)
    assert [d.shape for d in decoded] == [np.shape(u) for u in update]
    assert all(d.dtype == np.float32 for d in decoded)
    assert encoded.num_bytes == sum(a.nbytes for a in encoded.arrays.values())
    assert encoded.num_params == sum(np.size(u) for u in update)
    assert all(not a.flags.writeable for a in encoded.arrays.values())
    assert isinstance(codec, Codec)
    json.dumps(codec.config())


@pytest.mark.parametrize("codec", all_codecs(), ids=lambda c: json.dumps(c.config()))
def test_encode_leaves_the_update_unchanged(codec):
    update = [np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5, np.float32(2.0)]
    before = [np.copy(u) for u in update]
    codec.decode(codec.encode(update, seed=1))
    for u, b in zip(update, before, strict=True):
        np.testing.assert_array_equal(u, b)


# -- lossless and casting ------------------------------------------------------------------------


@SETTINGS
@given(update=updates())
def test_identity_round_trips_exactly(update):
    encoded = Identity().encode(update)
    for d, u in zip(Identity().decode(encoded), update, strict=True):
        np.testing.assert_array_equal(d, u)
    assert encoded.num_bytes == 4 * encoded.num_params


def test_identity_accepts_other_real_dtypes_and_lists():
    decoded = Identity().decode(Identity().encode([[1, 2], np.int64(3), np.array([0.5])]))
    assert [d.tolist() for d in decoded] == [[1.0, 2.0], 3.0, [0.5]]


@SETTINGS
@given(update=updates())
def test_float16_equals_a_float16_cast(update):
    encoded = Float16().encode(update)
    assert encoded.arrays["values"].dtype == np.float16
    assert encoded.num_bytes == 2 * encoded.num_params
    for d, u in zip(Float16().decode(encoded), update, strict=True):
        np.testing.assert_array_equal(d, np.asarray(u).astype(np.float16).astype(np.float32))


def test_float16_refuses_values_it_cannot_represent():
    with pytest.raises(ValueError, match="Float16 can only send values in"):
        Float16().encode([np.array([1e5])])


# -- stochastic quantisation ---------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_quantizer_is_unbiased_within_its_variance_bound(bits):
    rng = np.random.default_rng(0)
    update = [rng.normal(size=(5, 6)).astype(np.float32), np.float32(0.3), np.zeros(4, np.float32)]
    codec = StochasticQuantizer(bits=bits, block_size=8)
    x = flat(update).astype(np.float64)
    num_seeds = 2000
    samples = np.stack([flat(codec.decode(codec.encode(update, seed=s))) for s in range(num_seeds)])
    bound = flat(codec.variance_bound(codec.encode(update, seed=0))).astype(np.float64)

    # mean within 5 standard errors of the bound (plus float32 rounding of the grid values)
    standard_error = np.sqrt(bound / num_seeds)
    np.testing.assert_array_less(np.abs(samples.mean(axis=0) - x), 5 * standard_error + 1e-6)

    # each coordinate takes one of two neighbouring grid values, so the empirical variance
    # (ddof=0) is Δ²·p̂(1 − p̂) ≤ Δ²/4: the bound holds for the sample too, not just in expectation
    variance = samples.astype(np.float64).var(axis=0)
    assert np.all(variance <= bound * (1 + 1e-5) + 1e-12)

    # ... and matches the exact variance Δ² p (1 − p)
    m, s = np.sqrt(bound) * codec.levels, codec.levels
    step = 2 * np.where(m > 0, m, 1) / s
    u = (x / np.where(m > 0, m, 1) + 1) * s / 2
    p = u - np.floor(u)
    exact = step**2 * p * (1 - p) * (m > 0)
    assert np.all(np.abs(variance - exact) <= 6 * bound * np.sqrt(2 / num_seeds) + 1e-9)


def test_quantizer_bound_is_scale_squared_over_levels_squared():
    codec = StochasticQuantizer(bits=4, block_size=2)
    encoded = codec.encode([np.array([1.0, -0.5, 0.0, 3.0, 0.0, 0.0])], seed=0)
    assert encoded.arrays["scales"].tolist() == [1.0, 3.0, 0.0]
    np.testing.assert_allclose(
        codec.variance_bound(encoded)[0], [1 / 225, 1 / 225, 9 / 225, 9 / 225, 0, 0], rtol=1e-6
    )


@SETTINGS
@given(
    update=updates(),
    bits=st.integers(1, 16),
    block_size=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_quantizer_stays_within_the_block_and_one_grid_step(update, bits, block_size, seed):
    codec = StochasticQuantizer(bits=bits, block_size=block_size)
    encoded = codec.encode(update, seed=seed)
    x, q = flat(update).astype(np.float64), flat(codec.decode(encoded)).astype(np.float64)
    n = x.size
    assert encoded.arrays["scales"].shape == (math.ceil(n / block_size),)
    m = encoded.arrays["scales"].astype(np.float64)[np.arange(n) // block_size]
    np.testing.assert_array_equal(
        m, [np.abs(x[i - i % block_size :][:block_size]).max() for i in range(n)]
    )
    assert np.all(np.abs(q) <= m)
    assert np.all(np.abs(q - x) <= 2 * m / codec.levels * (1 + 1e-6) + 1e-30)
    assert np.all(q[m == 0] == 0)


def test_quantizer_same_seed_same_codes_different_seed_different():
    update = [np.linspace(-1, 1, 300, dtype=np.float32)]
    codec = StochasticQuantizer(bits=4)
    a, b, c = (codec.encode(update, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.arrays["codes"], b.arrays["codes"])
    assert not np.array_equal(a.arrays["codes"], c.arrays["codes"])


@pytest.mark.parametrize(
    ("bits", "dtype", "code_bytes"),
    [(8, np.uint8, 1024), (4, np.uint8, 512), (2, np.uint8, 256), (1, np.uint8, 128),
     (3, np.uint8, 384), (5, np.uint8, 640), (12, np.uint8, 1536), (16, np.uint16, 2048)],
)  # fmt: skip
def test_quantizer_bytes_reflect_the_bit_width(bits, dtype, code_bytes):
    update = [np.random.default_rng(1).normal(size=(32, 32)).astype(np.float32)]
    encoded = StochasticQuantizer(bits=bits, block_size=256).encode(update, seed=0)
    assert encoded.arrays["codes"].dtype == dtype
    assert encoded.arrays["codes"].nbytes == code_bytes
    assert encoded.num_bytes == code_bytes + 4 * 4  # four float32 scales
    full = Identity().encode(update).num_bytes
    assert encoded.num_bytes / full == pytest.approx(bits / 32 + 4 / 1024)


def test_quantizer_bytes_round_up_to_whole_bytes():
    encoded = StochasticQuantizer(bits=3, block_size=100).encode([np.ones(5)], seed=0)
    assert encoded.arrays["codes"].nbytes == 2  # 15 bits


@SETTINGS
@given(bits=st.integers(1, 16), data=st.data())
def test_pack_then_unpack_is_the_identity(bits, data):
    codes = np.array(data.draw(st.lists(st.integers(0, 2**bits - 1), max_size=50)), np.int64)
    np.testing.assert_array_equal(_unpack(_pack(codes, bits), bits, codes.size), codes)


# -- random rotation -----------------------------------------------------------------------------


@SETTINGS
@given(update=updates(), rotation_seed=st.integers(0, 2**32 - 1))
def test_rotation_is_inverted_exactly_up_to_rounding(update, rotation_seed):
    codec = RandomRotation(Identity(), rotation_seed=rotation_seed)
    encoded = codec.encode(update)
    n = encoded.num_params
    assert encoded.arrays["values"].size == (0 if n == 0 else 1 << (n - 1).bit_length())
    x, scale = flat(update), max(1.0, float(np.abs(flat(update)).max(initial=0)))
    np.testing.assert_allclose(flat(codec.decode(encoded)), x, atol=1e-5 * scale)
    # orthogonal: the rotation keeps the norm
    np.testing.assert_allclose(
        np.linalg.norm(encoded.arrays["values"]), np.linalg.norm(x), rtol=1e-5, atol=1e-5
    )


def test_rotation_keeps_the_quantizer_unbiased_and_lowers_its_error_on_spikes():
    x = np.full(64, 0.01, np.float32)
    x[[3, 40]] = [5.0, -4.0]  # a few large coordinates, as in real updates
    plain = StochasticQuantizer(bits=2, block_size=64)
    rotated = RandomRotation(plain, rotation_seed=0)
    num_seeds = 1000
    samples = {
        c.name: np.stack([c.decode(c.encode([x], seed=s))[0] for s in range(num_seeds)])
        for c in (plain, rotated)
    }
    mse = {name: float(((q - x) ** 2).sum(axis=1).mean()) for name, q in samples.items()}
    assert mse["RandomRotation"] < 0.5 * mse["StochasticQuantizer"]
    # unbiased: R is linear, so Var of each decoded coordinate ≤ Σ_j Var_j / d ≤ m'²/s²
    m_rot = float(np.abs(rotated.encode([x], seed=0).arrays["scales"]).max())
    standard_error = math.sqrt(m_rot**2 / plain.levels**2 / num_seeds)
    np.testing.assert_array_less(
        np.abs(samples["RandomRotation"].mean(axis=0) - x), 5 * standard_error
    )


def test_rotation_checks_its_arguments():
    with pytest.raises(TypeError, match="codec must be a codec"):
        RandomRotation(8)
    with pytest.raises(ValueError, match=r"rotation_seed must be an integer in \[0, inf\]"):
        RandomRotation(Identity(), rotation_seed=-1)
    encoded = RandomRotation(Identity(), rotation_seed=1).encode([np.ones(3)])
    with pytest.raises(ValueError, match="cannot be decoded by"):
        RandomRotation(Identity(), rotation_seed=2).decode(encoded)
    with pytest.raises(ValueError, match="cannot be decoded by"):
        Identity().decode(encoded)


# -- Top-k and error feedback --------------------------------------------------------------------


@SETTINGS
@given(update=updates(), fraction=st.floats(0.0, 1.0, exclude_min=True))
def test_topk_keeps_the_ceil_fraction_largest_coordinates(update, fraction):
    codec = TopK(fraction)
    encoded = codec.encode(update)
    x, q = flat(update), flat(codec.decode(encoded))
    k = min(x.size, max(1, math.ceil(round(fraction * x.size, 9)))) if x.size else 0
    indices = encoded.arrays["indices"]
    assert indices.dtype == np.int32 and encoded.arrays["values"].dtype == np.float32
    assert indices.size == k == codec.num_kept(x.size) and np.all(np.diff(indices) > 0)
    assert encoded.num_bytes == 8 * k
    np.testing.assert_array_equal(q[indices], x[indices])
    dropped = np.setdiff1d(np.arange(x.size), indices)
    np.testing.assert_array_equal(q[dropped], 0)
    if k and dropped.size:
        assert np.abs(x[indices]).min() >= np.abs(x[dropped]).max()


def test_topk_counts_and_ties():
    assert [TopK(0.01).num_kept(n) for n in (0, 1, 100, 101, 250)] == [0, 1, 1, 2, 3]
    assert TopK(0.07).num_kept(100) == 7  # not 8, despite 0.07 * 100 = 7.000000000000001
    assert TopK(1e-12).num_kept(5) == 1  # a non-empty update always sends something
    encoded = TopK(0.5).encode([np.array([1.0, -1.0, 1.0, 1.0])])
    assert encoded.arrays["indices"].tolist() == [0, 1]  # ties: the earlier coordinate wins


@pytest.mark.parametrize(
    "codec", [TopK(0.1), StochasticQuantizer(bits=2, block_size=16), Float16()], ids=str
)
def test_error_feedback_accounting_is_exact_over_rounds(codec):
    rng = np.random.default_rng(3)
    shapes = [(4, 5), (3,), ()]
    ef = ErrorFeedback(codec)
    residual = ef.init([np.zeros(s) for s in shapes])
    assert [r.shape for r in residual] == shapes and all(r.dtype == np.float32 for r in residual)
    total_update = total_sent = 0.0
    for round_number in range(30):
        update = [rng.normal(size=s).astype(np.float32) for s in shapes]
        previous = [np.copy(r) for r in residual]
        encoded, residual = ef.apply(update, residual, seed=round_number)
        sent = codec.decode(encoded)
        for s_, r, u, p in zip(sent, residual, update, previous, strict=True):
            np.testing.assert_allclose(s_ + r, u + p, rtol=1e-6, atol=1e-6)
        total_update = total_update + flat(update).astype(np.float64)
        total_sent = total_sent + flat(sent).astype(np.float64)
    # nothing is lost, only delayed: Σ sent = Σ updates − final residual
    np.testing.assert_allclose(total_sent + flat(residual), total_update, atol=1e-4)


def test_error_feedback_makes_topk_track_the_sum_of_updates():
    rng = np.random.default_rng(4)
    codec, rounds = TopK(0.1), 200
    ef = ErrorFeedback(codec)
    residual = ef.init([np.zeros(50)])
    with_ef = without_ef = total = np.zeros(50)
    drift = rng.normal(size=50)  # a consistent direction, as in training
    for r in range(rounds):
        update = [(drift + rng.normal(size=50)).astype(np.float32)]
        encoded, residual = ef.apply(update, residual, seed=r)
        with_ef = with_ef + codec.decode(encoded)[0]
        without_ef = without_ef + codec.decode(codec.encode(update))[0]
        total = total + update[0]
    error_with = np.linalg.norm(with_ef - total) / np.linalg.norm(total)
    error_without = np.linalg.norm(without_ef - total) / np.linalg.norm(total)
    assert error_with < 0.1 < 0.5 < error_without


def test_error_feedback_leaves_its_arguments_unchanged():
    ef = ErrorFeedback(TopK(0.5))
    update, residual = [np.array([1.0, 2.0])], [np.array([0.5, 0.0], np.float32)]
    ef.apply(update, residual)
    assert update[0].tolist() == [1.0, 2.0] and residual[0].tolist() == [0.5, 0.0]


# -- plain-English errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: StochasticQuantizer(bits=0), ValueError, r"bits must be an integer in \[1, 16\]"),
        (lambda: StochasticQuantizer(bits=17), ValueError, r"bits must be an integer in \[1, 16\]"),
        (lambda: StochasticQuantizer(bits=2.5), TypeError, "bits must be an integer"),
        (lambda: StochasticQuantizer(bits=True), TypeError, "bits must be an integer"),
        (
            lambda: StochasticQuantizer(block_size=0),
            ValueError,
            r"block_size must be .* \[1, inf\]",
        ),
        (lambda: TopK(0.0), ValueError, r"fraction must be a finite number in \(0, 1\]"),
        (lambda: TopK(1.5), ValueError, r"fraction must be a finite number in \(0, 1\]"),
        (lambda: TopK(float("nan")), ValueError, "fraction must be a finite number"),
        (lambda: TopK("0.1"), TypeError, "fraction must be a number"),
        (lambda: ErrorFeedback("topk"), TypeError, "codec must be a codec"),
    ],
)
def test_bad_settings_raise_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("update", "error", "match"),
    [
        (np.ones(3), TypeError, "update must be a list of arrays"),
        (3.0, TypeError, "update must be a list of arrays"),
        ([np.array(["a"])], TypeError, r"update\[0\] must hold real numbers"),
        ([np.ones(2), np.array([1.0, np.nan])], ValueError, r"update\[1\] must be finite"),
        ([np.array([1e39])], ValueError, r"update\[0\] must be finite"),
    ],
)
def test_bad_updates_raise_clear_errors(update, error, match):
    with pytest.raises(error, match=match):
        StochasticQuantizer().encode(update)


def test_decode_checks_its_input():
    codec = StochasticQuantizer(bits=4, block_size=4)
    encoded = codec.encode([np.ones(10)], seed=0)
    with pytest.raises(TypeError, match="encoded must be an Encoded record"):
        codec.decode({"codes": encoded.arrays["codes"]})
    with pytest.raises(ValueError, match="cannot be decoded by"):
        StochasticQuantizer(bits=8, block_size=4).decode(encoded)
    with pytest.raises(ValueError, match="cannot be decoded by"):
        TopK(0.5).decode(encoded)
    tampered = Encoded(encoded.config, encoded.shapes, {**encoded.arrays, "scales": np.ones(3)})
    with pytest.raises(ValueError, match=r"encoded.arrays\['scales'\] must be float32\[3\]"):
        codec.decode(tampered)
    missing = Encoded(encoded.config, encoded.shapes, {"codes": encoded.arrays["codes"]})
    with pytest.raises(ValueError, match="encoded.arrays must have keys"):
        codec.decode(missing)
    wrong_shape = Encoded(encoded.config, ((11,),), encoded.arrays)
    with pytest.raises(ValueError, match=r"encoded.arrays\['codes'\] must be uint8\[6\]"):
        codec.decode(wrong_shape)
    topk = TopK(0.5).encode([np.ones(4)])
    bad_index = Encoded(
        topk.config, topk.shapes, {**topk.arrays, "indices": np.array([0, 9], np.int32)}
    )
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\]"):
        TopK(0.5).decode(bad_index)


def test_error_feedback_checks_the_residual_shapes():
    ef = ErrorFeedback(TopK(0.5))
    with pytest.raises(ValueError, match="residual must have the update's shapes"):
        ef.apply([np.ones(3)], [np.zeros(4)])
