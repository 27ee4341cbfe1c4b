"""Compressed updates on Flower (fedlab.flower): settings, the encode -> record -> decode trip,
and one end-to-end run with TopK and error feedback against fedlab.simulate.

The unit tests need Flower's record classes but no processes; the end-to-end test starts a
SuperLink and three SuperNodes on 127.0.0.1 (about a minute).
"""

import dataclasses
import math

import numpy as np
import pytest

from fedlab import steps
from fedlab.compression import ErrorFeedback, Float16, StochasticQuantizer, TopK
from fedlab.flower import FlowerConfig, LocalFederation, apps, write_app

# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"compression": "int4"}, ValueError, "compression must be one of"),
        ({"compression_fraction": 0.0}, ValueError, r"compression_fraction must be .* \(0, 1\]"),
        ({"compression_fraction": 1.5}, ValueError, r"compression_fraction must be .* \(0, 1\]"),
        ({"error_feedback": True}, ValueError, "error_feedback=True needs a lossy compression"),
        ({"error_feedback": 1, "compression": "topk"}, TypeError, "error_feedback must be True"),
    ],
)
def test_config_rejects_bad_compression_settings(kwargs, error, message):
    with pytest.raises(error, match=message):
        FlowerConfig(**kwargs)


def test_compression_settings_round_trip_through_the_run_config(tmp_path):
    config = FlowerConfig(compression="topk", compression_fraction=0.25, error_feedback=True)
    flat = config.to_run_config()
    assert flat["compression"] == "topk" and flat["compression-fraction"] == 0.25
    assert flat["error-feedback"] is True
    assert FlowerConfig.from_run_config(flat) == config
    # Flower may hand an integer back for the float setting
    assert FlowerConfig.from_run_config({"compression-fraction": 1}).compression_fraction == 1.0
    assert FlowerConfig().to_run_config()["compression"] == "none"
    text = (write_app(tmp_path, config) / "pyproject.toml").read_text()
    assert 'compression = "topk"' in text and "error-feedback = true" in text


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, None),
        ({"compression": "float16"}, Float16()),
        ({"compression": "int8"}, StochasticQuantizer(bits=8)),
        ({"compression": "topk", "compression_fraction": 0.1}, TopK(0.1)),
        (
            {"compression": "int8", "error_feedback": True},
            ErrorFeedback(StochasticQuantizer(bits=8)),
        ),
    ],
)
def test_make_compression_builds_the_codec(kwargs, expected):
    assert FlowerConfig(**kwargs).make_compression() == expected


# -- the trip up: client encodes into records, server decodes ---------------------------------


def _update(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)]


@pytest.mark.parametrize(
    "compression",
    [ErrorFeedback(TopK(0.1)), StochasticQuantizer(bits=8, block_size=8), Float16()],
    ids=["topk+ef", "int8", "float16"],
)
def test_records_decode_to_exactly_what_compress_update_gives(compression):
    app, _, _ = apps._require_flwr()
    codec = steps._codec_of(compression)  # the codec the server decodes with
    shapes = [(5, 4), (4,)]
    has_residual = isinstance(compression, ErrorFeedback)
    residual = reference_residual = compression.init(_update(0)) if has_residual else []
    for round_num in (1, 2, 3):  # client 7's residual carried from round to round
        delta = _update(round_num)
        arrays, about, residual = apps._compressed_reply(
            app, compression, delta, round_num, 7, 11, residual
        )
        decoded = apps._decode_reply(codec, arrays, about, shapes)
        expected, num_bytes, reference_residual = steps.compress_update(
            compression, delta, round_num, 7, 11, reference_residual
        )
        for got, want in zip(decoded, expected, strict=True):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(residual, reference_residual, strict=True):
            np.testing.assert_array_equal(got, want)
        # the record holds the encoded arrays in the dtypes they travel in; bytes_up measures
        # them: the payload plus each array's .npy header
        dtypes = {name: array.numpy().dtype for name, array in arrays.items()}
        payload = sum(array.numpy().nbytes for array in arrays.values())
        assert payload == num_bytes
        assert num_bytes < apps._record_bytes(arrays) <= num_bytes + 160 * len(arrays)
    if has_residual:
        assert dtypes == {"indices": np.dtype(np.int32), "values": np.dtype(np.float32)}
        assert num_bytes == 8 * 3  # ceil(0.1 * 24) = 3 coordinates: int32 index + float32 value
        assert any(np.any(r != 0) for r in residual)  # what TopK left out waits for next round
    elif isinstance(compression, Float16):
        assert dtypes == {"values": np.dtype(np.float16)} and num_bytes == 2 * 24
    else:
        assert dtypes == {"codes": np.dtype(np.uint8), "scales": np.dtype(np.float32)}


def test_a_stochastic_codec_uses_the_round_and_client_stream():
    app, _, _ = apps._require_flwr()
    codec = StochasticQuantizer(bits=2, block_size=24)
    codes = [
        apps._compressed_reply(app, codec, _update(0), r, k, 0, [])[0]["codes"].numpy()
        for r, k in [(1, 0), (1, 0), (2, 0), (1, 1)]
    ]
    assert np.array_equal(codes[0], codes[1])  # same round and client: same codes
    assert not np.array_equal(codes[0], codes[2]) and not np.array_equal(codes[0], codes[3])


def test_server_refuses_updates_it_cannot_decode():
    app, _, _ = apps._require_flwr()
    arrays, about, _ = apps._compressed_reply(app, TopK(0.5), _update(0), 1, 0, 0, [])
    with pytest.raises(ValueError, match="encoded its update with .*'fraction': 0.5.* the run"):
        apps._decode_reply(TopK(0.1), arrays, about, [(5, 4), (4,)])
    with pytest.raises(ValueError, match=r"has shapes \[\(5, 4\), \(4,\)\], the model"):
        apps._decode_reply(TopK(0.5), arrays, about, [(4, 5), (4,)])
    plain = app.RecordDict({"arrays": apps._arrays(app, _update(0))})
    with pytest.raises(ValueError, match="sent them uncompressed"):
        apps._received_update(plain, TopK(0.5), [(5, 4), (4,)])
    np.testing.assert_array_equal(
        apps._received_update(plain, None, [(5, 4), (4,)])[1], _update(0)[1]
    )


# -- end to end -------------------------------------------------------------------------------


def _close(a: float, b: float, rel: float = 1e-4) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-7)


def test_topk_with_error_feedback_on_flower_equals_simulate():
    config = FlowerConfig(
        num_clients=3,
        num_rounds=2,
        compression="topk",
        compression_fraction=0.1,
        error_feedback=True,
        round_timeout=240,
    )
    with LocalFederation(3) as federation:
        history = federation.run(config, timeout=600)
    reference = config.simulate()
    assert reference.config["compression"] == ErrorFeedback(TopK(0.1)).config()
    assert history.config["compression"] == "topk" and history.config["error_feedback"] is True
    num_parameters = reference.config["num_parameters"]
    assert len(history) == len(reference) == 2
    for f, r in zip(history.rounds, reference.rounds, strict=True):
        assert f.clients == r.clients == (0, 1, 2) and f.dropped == ()
        assert f.client_num_examples == r.client_num_examples
        assert f.client_steps == r.client_steps
        # round 2 matches only if each client kept its round-1 residual in its own process
        for name in ("test_loss", "test_accuracy", "train_loss"):
            assert _close(getattr(f, name), getattr(r, name)), (
                f"round {f.round} {name}: flower {getattr(f, name)} vs simulate {getattr(r, name)}"
            )
        for a, b in zip(f.client_loss, r.client_loss, strict=True):
            assert _close(a, b)
        # measured from the encoded arrays in the replies: the engine's count (their nbytes)
        # plus two small .npy headers per client; far below float32 updates
        assert r.bytes_up <= f.bytes_up < r.bytes_up + 2 * 160 * len(f.clients)
        assert f.bytes_up < 0.3 * 4 * num_parameters * len(f.clients)
    # the residual matters: without error feedback round 2 comes out different
    plain = dataclasses.replace(config, error_feedback=False).simulate()
    assert _close(plain.rounds[0].test_loss, reference.rounds[0].test_loss, 1e-6)
    assert not _close(plain.rounds[1].test_loss, reference.rounds[1].test_loss)
