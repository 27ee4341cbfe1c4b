"""fedlab.keyboard: the generated next-word users, their statistics and the token metrics."""

import dataclasses
import time

import numpy as np
import pytest

from fedlab import keyboard as kb
from fedlab.partition import natural


@pytest.fixture(scope="module")
def data():
    return kb.keyboard(num_clients=6, sentences_per_client=40, public_sentences=200, seed=0)


def total_variation(p, q):
    return 0.5 * float(np.abs(p - q).sum())


# ---------------------------------------------------------------- the generator


def test_vocabulary_has_no_repeats_and_specials_first():
    assert kb.VOCAB[:3] == ("<pad>", "<bos>", "<eos>")
    assert len(set(kb.VOCAB)) == len(kb.VOCAB) > 150
    topic_words = [w for lists in kb._TOPICS.values() for text in lists for w in text.split()]
    assert len(set(topic_words)) == len(topic_words)  # no word in two topics


def test_shapes_dtypes_sizes_and_natural_split(data):
    assert data.vocab == kb.VOCAB and data.seq_len == 16
    n_train, n_test = 6 * 32, 6 * 8  # test_fraction 0.2 of 40
    for x, y, n in (
        (data.x_train, data.y_train, n_train),
        (data.x_test, data.y_test, n_test),
        (data.x_public, data.y_public, 200),
    ):
        assert x.shape == y.shape == (n, 16) and x.dtype == y.dtype == np.int32
        assert x.min() >= 0 and max(x.max(), y.max()) < len(data.vocab)
        assert (x[:, 0] == kb.BOS).all()
    assert np.array_equal(np.unique(data.client_ids), np.arange(6))
    assert np.array_equal(np.unique(data.test_client_ids), np.arange(6))
    assert np.bincount(data.client_ids).tolist() == [32] * 6
    split = natural(data.client_ids, data.y_train[:, 0])
    assert split.num_clients == 6 and split.num_examples == n_train
    assert repr(data) == f"KeyboardData({data.summary()})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.seed = 1


def test_targets_are_inputs_shifted_by_one_and_rows_are_sentences(data):
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
        full = np.concatenate([x, y[:, -1:]], axis=1)
        for row in full:  # <bos> words <eos> <pad>...: eos once, then only padding
            end = int(np.flatnonzero(row == kb.EOS)[0])
            assert (row[1:end] >= 3).all() and (row[end + 1 :] == kb.PAD).all()


def test_short_seq_len_cuts_sentences():
    cut = kb.keyboard(num_clients=2, sentences_per_client=5, seq_len=3, seed=0)
    assert cut.x_train.shape == (8, 3)
    np.testing.assert_array_equal(cut.y_train[:, :-1], cut.x_train[:, 1:])
    assert (cut.x_train[:, 1:] >= 3).all()  # every sentence has at least 3 words: nothing pads


def test_deterministic_per_seed_and_different_across_seeds():
    a, b = kb.keyboard(seed=4), kb.keyboard(seed=4)
    other = kb.keyboard(seed=5)
    for field in ("x_train", "y_train", "client_ids", "x_test", "x_public", "y_public"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, other.x_train)
    assert not np.array_equal(a.x_public, other.x_public)


def test_users_do_not_depend_on_how_many_others_there_are():
    few = kb.keyboard(num_clients=3, sentences_per_client=10, seed=2)
    many = kb.keyboard(num_clients=7, sentences_per_client=10, seed=2)
    np.testing.assert_array_equal(few.x_train, many.x_train[many.client_ids < 3])
    np.testing.assert_array_equal(few.x_public, many.x_public)


def test_defaults_generate_fast():
    start = time.perf_counter()
    kb.keyboard()
    assert time.perf_counter() - start < 0.5


# ---------------------------------------------------------------- heterogeneity


def test_divergence_grows_with_heterogeneity():
    values = [kb.keyboard(heterogeneity=h, seed=0).client_divergence() for h in (0, 0.25, 0.5, 1)]
    assert values == sorted(values) and values[-1] > 2 * values[0]


def test_heterogeneity_zero_is_sampling_noise_and_one_is_not():
    # Shuffling rows between users keeps sizes but destroys any user identity: pure noise.
    rng = np.random.default_rng(0)
    for h, alike in ((0.0, True), (1.0, False)):
        data = kb.keyboard(heterogeneity=h, seed=1)
        noise = dataclasses.replace(data, client_ids=rng.permutation(data.client_ids))
        ratio = data.client_divergence() / noise.client_divergence()
        assert (0.9 < ratio < 1.1) if alike else ratio > 1.8, (h, ratio)


def test_heterogeneity_zero_users_and_the_public_corpus_follow_the_generic_grammar():
    generic = kb.generic_word_distribution()
    assert generic[:3].tolist() == [0, 0, 0] and generic.sum() == pytest.approx(1)
    big = kb.keyboard(10, 500, heterogeneity=0.0, public_sentences=5000, seed=0)
    public = kb._normalise(kb._unigrams(big.y_public, np.zeros(5000, int), 1))[0]
    pooled = big.word_distributions().mean(axis=0)
    assert total_variation(public, generic) < 0.04
    assert total_variation(pooled, generic) < 0.05
    far = kb.keyboard(10, 500, heterogeneity=1.0, seed=0).word_distributions()
    near = big.word_distributions()
    distance = lambda dists: np.mean([total_variation(p, generic) for p in dists])  # noqa: E731
    assert distance(far) > 3 * distance(near)


def test_word_distributions_rows_and_divergence_of_identical_users():
    data = kb.keyboard(num_clients=3, sentences_per_client=10, seed=0)
    dists = data.word_distributions()
    assert dists.shape == (3, len(data.vocab)) and (dists[:, :3] == 0).all()
    np.testing.assert_allclose(dists.sum(axis=1), 1)
    same = dataclasses.replace(
        data,
        y_train=np.tile(data.y_train[:8], (3, 1)),
        client_ids=np.repeat(np.arange(3), 8),
    )
    assert same.client_divergence() == 0.0


# ---------------------------------------------------------------- decode / encode


def test_decode_and_encode_round_trip(data):
    for row in data.x_train[:20]:
        sentence = data.decode(row)
        words = row[row >= 3]
        assert sentence.split() == [data.vocab[t] for t in words]
        np.testing.assert_array_equal(data.encode(sentence), words)
    assert data.decode([kb.BOS, kb.EOS, kb.PAD]) == ""
    with pytest.raises(ValueError, match="tokens"):
        data.decode([len(data.vocab)])
    with pytest.raises(ValueError, match="tokens"):
        data.decode(data.x_train[:2])
    with pytest.raises(ValueError, match="zebra"):
        data.encode("i love the zebra")


# ---------------------------------------------------------------- metrics


def test_metrics_on_perfect_uniform_and_padded_logits():
    targets = np.array([[5, 3, 7, 0], [4, 4, 0, 0]])
    perfect = 50.0 * np.eye(10)[targets]
    assert kb.next_token_accuracy(perfect, targets) == 1.0
    assert kb.perplexity(perfect, targets) == pytest.approx(1.0, abs=1e-9)
    assert kb.perplexity(np.zeros((2, 4, 10)), targets) == pytest.approx(10.0)
    # Wrong only where the target is padding: ignored by default, counted with ignore=None.
    wrong_at_pad = perfect.copy()
    wrong_at_pad[targets == 0] = 50.0 * np.eye(10)[9]
    assert kb.next_token_accuracy(wrong_at_pad, targets) == 1.0
    assert kb.next_token_accuracy(wrong_at_pad, targets, ignore=None) == pytest.approx(5 / 8)
    assert kb.perplexity(wrong_at_pad, targets) == pytest.approx(1.0, abs=1e-9)
    assert kb.perplexity(wrong_at_pad, targets, ignore=None) > 100


def test_perplexity_matches_hand_computed_cross_entropy():
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))
    targets = np.array([1, 2])
    assert kb.perplexity(logits, targets, ignore=None) == pytest.approx(np.sqrt(1 / (0.25 * 0.6)))
    assert kb.next_token_accuracy(logits, targets, ignore=None) == 0.5


@pytest.mark.parametrize(
    "logits, targets, match",
    [
        (np.zeros((2, 5)), np.zeros(3, int), "logits must have shape"),
        (np.zeros((2, 5)), np.array([1, 5]), "targets must be ids"),
        (np.zeros((2, 5)), np.array([0, 0]), "no tokens to score"),
    ],
)
def test_metrics_reject_bad_arguments(logits, targets, match):
    for metric in (kb.next_token_accuracy, kb.perplexity):
        with pytest.raises(ValueError, match=match):
            metric(logits, targets)


# ---------------------------------------------------------------- the model accepts it


def test_tiny_transformer_accepts_the_rows(data):
    from fedlab.models import tiny_transformer

    model = tiny_transformer(len(data.vocab), data.seq_len, d_model=16, num_heads=2, num_layers=1)
    logits = np.asarray(model(data.x_train[:4]))
    assert logits.shape == (4, data.seq_len, len(data.vocab))
    assert kb.perplexity(logits, data.y_train[:4]) == pytest.approx(len(data.vocab), rel=0.5)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"num_clients": 0}, ValueError),
        ({"num_clients": 2.0}, TypeError),
        ({"sentences_per_client": 1}, ValueError),
        ({"seq_len": 0}, ValueError),
        ({"heterogeneity": -0.1}, ValueError),
        ({"heterogeneity": 1.5}, ValueError),
        ({"heterogeneity": float("nan")}, ValueError),
        ({"heterogeneity": "high"}, TypeError),
        ({"public_sentences": -1}, ValueError),
        ({"test_fraction": 0.0}, ValueError),
        ({"test_fraction": 1.0}, ValueError),
        ({"seed": -1}, ValueError),
        ({"seed": True}, TypeError),
    ],
)
def test_keyboard_rejects_bad_arguments(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        kb.keyboard(**kwargs)


def test_no_public_corpus_and_extreme_test_fractions():
    data = kb.keyboard(
        num_clients=2, sentences_per_client=2, public_sentences=0, test_fraction=0.01
    )
    assert data.x_public.shape == (0, 16) and len(data.x_train) == len(data.x_test) == 2
    data = kb.keyboard(num_clients=2, sentences_per_client=3, test_fraction=0.99)
    assert len(data.x_train) == 2 and len(data.x_test) == 4
