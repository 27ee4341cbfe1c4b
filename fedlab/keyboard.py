"""A generated next-word dataset of keyboard "users" (``09_federated_fine_tuning_with_lora``).

The classic federated-learning workload is next-word prediction on phone keyboards: everyone
writes the same language, but each person writes about their own things in their own way.
:func:`keyboard` generates such data offline, seeded, in milliseconds:

* **One language.** A fixed vocabulary (:data:`SPECIAL_TOKENS` then a few hundred English words)
  and a small grammar of sentence templates such as ``"{pron} want to {verb} {det} {adj} {noun}"``.
  Each sentence picks a template and one *topic* (food, sport, music, ...); its nouns, verbs and
  adjectives come from that topic's word lists. The *generic* distribution has Zipf-like
  word frequencies, uniform topics and slightly Zipf-like templates.
* **Users.** Every distribution in the grammar (templates, topics, each topic's nouns/verbs/
  adjectives, determiners, pronouns, time words) is, for user ``k``,
  ``p_k = (1 − h) · p_generic + h · q_k`` with ``q_k ~ Dirichlet(½ · K · p_generic)`` (``K`` the
  number of choices). So ``heterogeneity`` ``h = 0`` makes every user the generic writer, and
  ``h = 1`` gives each user a few favourite topics, words and phrasings. The ``q_k`` do not depend
  on ``h``: with one seed, turning the knob slides every user in a straight line away from the
  generic writer.
* **A public corpus** drawn from the generic distribution, for central pre-training.
* **Sequences.** One sentence per row: ``<bos> w1 … wn <eos>`` padded with ``<pad>`` (token 0) to
  ``seq_len + 1`` tokens (sentences that do not fit are cut); inputs are the first ``seq_len``
  tokens and targets the last ``seq_len``, so ``y[:, :-1] == x[:, 1:]``. Padding rather than
  packing keeps one readable sentence per row; mask ``<pad>`` targets in losses and metrics
  (:func:`next_token_accuracy`, :func:`perplexity` do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from fedlab.validate import check_array, check_float, check_int

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")

# Topic -> (10 nouns, 6 verbs, 6 adjectives), most common first. No word is in two topics.
_TOPICS = {
    "food": (
        "pizza pasta soup salad coffee tea cake bread rice tacos",
        "eat cook order bake taste share",
        "tasty spicy sweet fresh warm crispy",
    ),
    "sport": (
        "game match team ball gym race coach goal bike pool",
        "watch win practice join run swim",
        "fast tough close fit strong quick",
    ),
    "music": (
        "song album concert band guitar show playlist piano drum singer",
        "hear play sing record learn stream",
        "loud catchy live quiet new classic",
    ),
    "travel": (
        "trip flight train hotel beach city map bag ticket island",
        "book visit pack plan miss explore",
        "long cheap sunny busy far lovely",
    ),
    "work": (
        "meeting report email project deadline office boss client slide budget",
        "send finish review check write update",
        "urgent late short final boring important",
    ),
    "family": (
        "mom dad sister brother baby grandma party dinner birthday gift",
        "call meet hug help thank host",
        "happy proud tired kind dear little",
    ),
    "weather": (
        "rain snow sun wind storm cloud umbrella coat jacket forecast",
        "expect bring wear avoid enjoy feel",
        "cold hot wet dry windy grey",
    ),
    "games": (
        "level dragon quest controller console puzzle card score player server",
        "beat unlock build upgrade save craft",
        "hard epic rare easy weird online",
    ),
}
# Slots every topic shares.
_LISTS = {
    "det": "the a my your our this that".split(),
    "pron": "i we you they".split(),
    "time": "today tonight tomorrow now later soon again sometime".split(),
}
# The grammar: literal words and {slots}. noun2/adj2/det2 are second draws from the same lists.
_TEMPLATES = (
    "{pron} {verb} {det} {noun} {time}",
    "{det} {noun} is so {adj}",
    "{pron} want to {verb} {det} {adj} {noun}",
    "did you {verb} the {noun} {time}",
    "lets {verb} {det} {noun} {time}",
    "the {adj} {noun} and the {noun2} are {adj2}",
    "{pron} love {det} {noun}",
    "see you at the {noun} {time}",
    "can we {verb} {det} {noun} with {det2} {noun2}",
    "{pron} really {verb} {det} {adj} {noun}",
    "what do you think of the {noun}",
    "i am going to {verb} the {noun} {time}",
)
_TOPIC_SLOTS = {"noun": "noun", "noun2": "noun", "verb": "verb", "adj": "adj", "adj2": "adj"}
_LIST_SLOTS = {"det": "det", "det2": "det", "pron": "pron", "time": "time"}
_CLASSES = ("noun", "verb", "adj")


def _words(text: str) -> list[str]:
    return text.split()


def _build_vocab() -> tuple[str, ...]:
    words: list[str] = []
    for template in _TEMPLATES:
        words += [w for w in template.split() if not w.startswith("{")]
    for choices in _LISTS.values():
        words += choices
    for lists in _TOPICS.values():
        for text in lists:
            words += _words(text)
    return SPECIAL_TOKENS + tuple(dict.fromkeys(words))  # first occurrence order, no repeats


VOCAB = _build_vocab()
_INDEX = {word: i for i, word in enumerate(VOCAB)}
# Token ids of each topic's word lists: class -> [num_topics, K].
_TOPIC_IDS = {
    c: np.array([[_INDEX[w] for w in _words(lists[j])] for lists in _TOPICS.values()])
    for j, c in enumerate(_CLASSES)
}
_LIST_IDS = {name: np.array([_INDEX[w] for w in words]) for name, words in _LISTS.items()}
_TEMPLATE_PARTS = tuple(
    [w[1:-1] if w.startswith("{") else _INDEX[w] for w in t.split()] for t in _TEMPLATES
)


def _zipf(k: int, exponent: float = 1.0) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** exponent
    return p / p.sum()


def _generic() -> dict[str, np.ndarray]:
    """The generic writer's distributions (topic lists as [num_topics, K] rows)."""
    num_topics = len(_TOPICS)
    dists = {"template": _zipf(len(_TEMPLATES), 0.5), "topic": np.full(num_topics, 1 / num_topics)}
    for c in _CLASSES:
        dists[c] = np.tile(_zipf(_TOPIC_IDS[c].shape[1]), (num_topics, 1))
    for name, ids in _LIST_IDS.items():
        dists[name] = _zipf(len(ids))
    return dists


def _user(rng: np.random.Generator, heterogeneity: float) -> dict[str, np.ndarray]:
    """``(1 − h) · generic + h · q`` with ``q ~ Dirichlet(½ K generic)``, for every distribution."""
    user = {}
    for name, generic in _generic().items():
        rows = np.atleast_2d(generic)
        q = np.stack([rng.dirichlet(0.5 * len(g) * g) for g in rows]).reshape(generic.shape)
        user[name] = (1 - heterogeneity) * generic + heterogeneity * q
    return user


def _draw(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices by inverse-CDF sampling from ``probs`` ([K], or [n, K]: one row per draw)."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(n)
    index = (u[:, None] >= np.broadcast_to(cdf, (n, cdf.shape[-1]))).sum(axis=1)
    return np.minimum(index, cdf.shape[-1] - 1)


def _sentences(
    rng: np.random.Generator, dists: dict[str, np.ndarray], n: int, seq_len: int
) -> np.ndarray:
    """``n`` rows of ``<bos> words <eos> <pad>…``, ``seq_len + 1`` int32 tokens each."""
    template = _draw(rng, dists["template"], n)
    topic = _draw(rng, dists["topic"], n)
    slots = {}
    for slot, c in _TOPIC_SLOTS.items():
        slots[slot] = _TOPIC_IDS[c][topic, _draw(rng, dists[c][topic], n)]
    for slot, name in _LIST_SLOTS.items():
        slots[slot] = _LIST_IDS[name][_draw(rng, dists[name], n)]
    rows = np.full((n, seq_len + 1), PAD, np.int32)
    for t, parts in enumerate(_TEMPLATE_PARTS):
        chosen = np.flatnonzero(template == t)
        for j, part in enumerate([BOS, *parts, EOS][: seq_len + 1]):
            rows[chosen, j] = slots[part][chosen] if isinstance(part, str) else part
    return rows


def generic_word_distribution() -> np.ndarray:
    """Exact expected word frequencies of the generic grammar, ``[len(VOCAB)]`` summing to 1.

    ``E[count(w)] = Σ_t π_t Σ_slots P(slot = w)`` over templates ``t``, normalised; special
    tokens get 0. A large public corpus's unigram frequencies converge to it (when ``seq_len``
    cuts no sentence).

    Example:
        >>> p = generic_word_distribution()
        >>> round(float(p.sum()), 6), VOCAB[int(p.argmax())]
        (1.0, 'the')
    """
    dists = _generic()
    slot_dist = {}
    for slot, c in _TOPIC_SLOTS.items():
        p = np.zeros(len(VOCAB))
        np.add.at(p, _TOPIC_IDS[c], dists["topic"][:, None] * dists[c])
        slot_dist[slot] = p
    for slot, name in _LIST_SLOTS.items():
        p = np.zeros(len(VOCAB))
        np.add.at(p, _LIST_IDS[name], dists[name])
        slot_dist[slot] = p
    expected = np.zeros(len(VOCAB))
    for weight, parts in zip(dists["template"], _TEMPLATE_PARTS, strict=True):
        for part in parts:
            if isinstance(part, str):
                expected += weight * slot_dist[part]
            else:
                expected[part] += weight
    return expected / expected.sum()


def _unigrams(tokens: np.ndarray, ids: np.ndarray, num_clients: int) -> np.ndarray:
    """Word counts ``[num_clients, len(VOCAB)]`` of each client's rows (special tokens skipped)."""
    rows = np.broadcast_to(ids[:, None], tokens.shape)
    words = tokens >= len(SPECIAL_TOKENS)
    flat = rows[words].astype(np.int64) * len(VOCAB) + tokens[words]
    counts = np.bincount(flat, minlength=num_clients * len(VOCAB))
    return counts.reshape(num_clients, len(VOCAB)).astype(np.float64)


def _normalise(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


@dataclass(frozen=True)
class KeyboardData:
    """Next-word sequences from simulated keyboard users, with a public generic corpus.

    Attributes:
        vocab: the words; token ``i`` is ``vocab[i]``; 0, 1, 2 are ``<pad>``, ``<bos>``, ``<eos>``.
        x_train: ``[n, seq_len]`` int32 inputs, one sentence per row.
        y_train: ``[n, seq_len]`` int32 next-token targets (``x`` shifted left by one).
        client_ids: ``[n]`` int64, the user of each training row (the natural split).
        x_test: held-out rows of every user, likewise.
        y_test: their targets.
        test_client_ids: the user of each test row.
        x_public: rows of the public corpus, drawn from the generic distribution.
        y_public: their targets.
        heterogeneity: how far users are from the generic writer, in [0, 1].
        seed: the seed that generated the data.

    Example:
        >>> data = keyboard(num_clients=3, sentences_per_client=10, seed=0)
        >>> data.x_train.shape, data.num_clients, data.vocab[:3]
        ((24, 16), 3, ('<pad>', '<bos>', '<eos>'))
    """

    vocab: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    client_ids: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_client_ids: np.ndarray
    x_public: np.ndarray
    y_public: np.ndarray
    heterogeneity: float
    seed: int

    def __repr__(self) -> str:  # the arrays are too long to print
        return f"KeyboardData({self.summary()})"

    name = "keyboard"
    ignore_class = PAD  # <pad> targets count in no loss or metric (fedlab.steps.example_losses)

    @property
    def num_clients(self) -> int:
        """Number of users."""
        return int(self.client_ids.max()) + 1

    def split(self):
        """The natural split, one client per user, as a :class:`fedlab.partition.ClientSplit`.

        Its "labels" (for label-count plots) are each sentence's first word.

        Example:
            >>> keyboard(num_clients=3, sentences_per_client=10).split().sizes.tolist()
            [8, 8, 8]
        """
        from fedlab.partition import natural

        return natural(self.client_ids, self.y_train[:, 0], num_classes=len(self.vocab))

    @property
    def seq_len(self) -> int:
        """Tokens per row."""
        return int(self.x_train.shape[1])

    def summary(self) -> str:
        """One line: users, rows, sequence length, vocabulary and heterogeneity.

        Example:
            >>> keyboard(num_clients=2, sentences_per_client=5, public_sentences=10).summary()
            'keyboard: 2 users, 8 train / 2 test / 10 public rows of 16 tokens, vocab 218, heterogeneity 0.5'
        """
        return (
            f"keyboard: {self.num_clients} users, {len(self.x_train)} train / "
            f"{len(self.x_test)} test / {len(self.x_public)} public rows of {self.seq_len} "
            f"tokens, vocab {len(self.vocab)}, heterogeneity {self.heterogeneity:g}"
        )

    def decode(self, tokens: ArrayLike) -> str:
        """The words of a 1-D token sequence, space-separated; special tokens are left out.

        Example:
            >>> data = keyboard(num_clients=1, sentences_per_client=2, seed=0)
            >>> data.decode([1, data.vocab.index("i"), data.vocab.index("love"), 2, 0])
            'i love'
        """
        tokens = check_array("tokens", tokens, ndim=1, dtype_kind="iu")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= len(self.vocab)):
            raise ValueError(f"tokens must be ids in [0, {len(self.vocab) - 1}]")
        return " ".join(self.vocab[t] for t in tokens if t >= len(SPECIAL_TOKENS))

    def encode(self, sentence: str) -> np.ndarray:
        """Token ids (int32) of a space-separated sentence; the inverse of :meth:`decode`.

        Example:
            >>> data = keyboard(num_clients=1, sentences_per_client=2)
            >>> data.decode(data.encode("see you at the beach"))
            'see you at the beach'
        """
        if not isinstance(sentence, str):
            raise TypeError(f"sentence must be a string, got {type(sentence).__name__}")
        index = {word: i for i, word in enumerate(self.vocab)}
        unknown = [w for w in sentence.split() if w not in index]
        if unknown:
            raise ValueError(f"sentence has words not in the vocabulary: {unknown}")
        return np.array([index[w] for w in sentence.split()], np.int32)

    def word_distributions(self) -> np.ndarray:
        """Each user's word frequencies in its training rows, ``[num_clients, len(vocab)]``.

        Counted over the targets ``y_train`` (every word of a sentence, once); special tokens
        get 0, so each row sums to 1.

        Example:
            >>> keyboard(num_clients=4, sentences_per_client=10).word_distributions().sum(axis=1)
            array([1., 1., 1., 1.])
        """
        return _normalise(_unigrams(self.y_train, self.client_ids, self.num_clients))

    def client_divergence(self) -> float:
        """Mean total-variation distance of each user's word frequencies from the pooled ones.

        ``D = (1/N) Σ_k ½ Σ_w |p_k(w) − p(w)|``, ``p_k`` from :meth:`word_distributions` and
        ``p`` the frequencies of all training words together (users weighted by their words).
        0 means every user writes alike; 1 means no shared words. Finite samples make ``D > 0``
        even at ``heterogeneity=0``: compare against that sampling-noise floor.

        Example:
            >>> low = keyboard(heterogeneity=0.0).client_divergence()
            >>> high = keyboard(heterogeneity=1.0).client_divergence()
            >>> bool(low < high)
            True
        """
        counts = _unigrams(self.y_train, self.client_ids, self.num_clients)
        pooled = counts.sum(axis=0) / counts.sum()
        return float(np.mean(0.5 * np.abs(_normalise(counts) - pooled).sum(axis=1)))


def keyboard(
    num_clients: int = 20,
    sentences_per_client: int = 100,
    seq_len: int = 16,
    heterogeneity: float = 0.5,
    public_sentences: int = 1000,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> KeyboardData:
    """Generate keyboard users' next-word data and a public generic corpus (see the module doc).

    Each user writes ``sentences_per_client`` sentences; the last ``round(test_fraction · n)``
    (at least one, leaving at least one) are its test rows. User ``k``'s data depends only on
    ``seed``, ``k``, ``heterogeneity``, ``seq_len`` and the sizes, and the public corpus only on
    ``seed``, ``public_sentences`` and ``seq_len``: adding users leaves the others unchanged.
    Pass ``client_ids`` to :func:`fedlab.partition.natural` for a ``ClientSplit``.

    Example:
        >>> data = keyboard(num_clients=2, sentences_per_client=5, seed=3)
        >>> data.decode(data.x_train[0])
        'i love this meeting'
    """
    num_clients = check_int("num_clients", num_clients, low=1, high=100_000)
    sentences_per_client = check_int("sentences_per_client", sentences_per_client, low=2)
    seq_len = check_int("seq_len", seq_len, low=1)
    heterogeneity = check_float("heterogeneity", heterogeneity, low=0.0, high=1.0)
    public_sentences = check_int("public_sentences", public_sentences, low=0)
    test_fraction = check_float(
        "test_fraction", test_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    seed = check_int("seed", seed, low=0)

    public_seed, clients_seed = np.random.SeedSequence(seed).spawn(2)
    public = _sentences(np.random.default_rng(public_seed), _generic(), public_sentences, seq_len)
    num_test = min(max(round(test_fraction * sentences_per_client), 1), sentences_per_client - 1)
    train, test = [], []
    for client_seed in clients_seed.spawn(num_clients):
        rng = np.random.default_rng(client_seed)
        rows = _sentences(rng, _user(rng, heterogeneity), sentences_per_client, seq_len)
        train.append(rows[:-num_test])
        test.append(rows[-num_test:])
    train, test = np.concatenate(train), np.concatenate(test)
    clients = np.arange(num_clients, dtype=np.int64)
    return KeyboardData(
        vocab=VOCAB,
        x_train=train[:, :-1],
        y_train=train[:, 1:],
        client_ids=np.repeat(clients, sentences_per_client - num_test),
        x_test=test[:, :-1],
        y_test=test[:, 1:],
        test_client_ids=np.repeat(clients, num_test),
        x_public=public[:, :-1],
        y_public=public[:, 1:],
        heterogeneity=heterogeneity,
        seed=seed,
    )


def _check_logits(logits: ArrayLike, targets: ArrayLike, ignore: int | None):
    logits = check_array("logits", logits, dtype_kind="fiu").astype(np.float64)
    targets = check_array("targets", targets, dtype_kind="iu")
    if logits.ndim < 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits must have shape targets.shape + (vocab_size,) = {targets.shape} + (V,), "
            f"got {logits.shape}"
        )
    if ignore is not None:
        ignore = check_int("ignore", ignore)
    mask = np.ones(targets.shape, bool) if ignore is None else targets != ignore
    if not mask.any():
        raise ValueError("targets has no tokens to score: every one equals ignore")
    if targets[mask].min() < 0 or targets[mask].max() >= logits.shape[-1]:
        raise ValueError(f"targets must be ids in [0, {logits.shape[-1] - 1}]")
    return logits, targets, mask


def next_token_accuracy(logits: ArrayLike, targets: ArrayLike, ignore: int | None = PAD) -> float:
    """Share of scored positions whose highest logit is the target token.

    ``logits``: ``[..., V]``; ``targets``: ``[...]`` int ids. Positions whose target equals
    ``ignore`` (padding by default; ``None`` scores all) are left out of the mean.

    Example:
        >>> logits = np.eye(3)[[1, 2, 0]]  # predicts 1, 2, 0
        >>> next_token_accuracy(logits, np.array([1, 1, 0]))  # the last target is padding
        0.5
    """
    logits, targets, mask = _check_logits(logits, targets, ignore)
    return float(np.mean(logits.argmax(axis=-1)[mask] == targets[mask]))


def perplexity(logits: ArrayLike, targets: ArrayLike, ignore: int | None = PAD) -> float:
    """``exp`` of the mean cross-entropy (nats) of the targets under ``softmax(logits)``.

    ``exp(−(1/M) Σ log softmax(logits)[target])`` over the ``M`` positions whose target is not
    ``ignore``. 1 is perfect; uniform logits give the vocabulary size.

    Example:
        >>> round(perplexity(np.zeros((2, 4, 10)), np.ones((2, 4), int)), 6)
        10.0
    """
    logits, targets, mask = _check_logits(logits, targets, ignore)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    return float(np.exp(-picked[mask].mean()))
