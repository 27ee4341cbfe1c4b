"""Poisoned clients: what a malicious client can do to a federated run (``15_poisoning_and_robust_aggregation``).

The server of federated learning never sees the clients' data, so it cannot check it — nor the
training done on it. A malicious client controls two things: the **data** it trains on (data
poisoning) and the **update** it sends (model poisoning). Every attack here is such a client
behaviour, an :class:`Attack` with two methods that a runner calls for its malicious clients
only; nothing in the round itself changes:

* :meth:`Attack.poison_data` — before training: the client rewrites its own examples
  (:func:`poison_dataset` does it for every malicious client of a run, once);
* :meth:`Attack.tamper` — at upload: the malicious rows of a round's ``[K, ...]`` updates are
  replaced by what the attackers send instead of their honest update (:func:`tamper_round`);
* :meth:`Attack.evaluation_sets` — extra test sets that measure the attack's own goal (the
  backdoor's success rate); the clean test accuracy measures the rest.

=========================  =================================================  =====================
attack                     what a malicious client does                       reference
=========================  =================================================  =====================
:class:`LabelFlip`         trains on wrong labels: ``y → C − 1 − y``, or one  Biggio et al. 2012;
                           class relabelled as another                        Tolpegin et al. 2020
:class:`Backdoor`          stamps a pixel trigger on some of its images and   Gu et al. 2017
                           labels them ``target``: the model learns "trigger  (BadNets);
                           means target" and stays accurate on clean images   Bagdasaryan et al. 2020
:class:`SignFlip`          sends ``−scale · Δ``: pushes the model backwards   Li et al. 2019 (RSA)
:class:`ScaledUpdate`      sends ``factor · Δ`` (boosting); with factor n/η   Bagdasaryan et al. 2020
                           its model replaces the global one                  (model replacement)
:class:`GaussianUpdate`    sends noise ``N(0, std²)`` instead of an update    Blanchard et al. 2017
:class:`FreeRider`         sends back the model it received (``Δ = 0``): it   Lin et al. 2019;
                           gets the model and contributes nothing             Fraboni et al. 2021
:class:`ALittleIsEnough`   every attacker sends ``mean − z · std`` of the     Baruch et al. 2019
                           honest updates: a small, coordinated shift that
                           stays inside the honest spread
:class:`Combined`          a data attack and an update attack together (the   —
                           backdoor with a boosted update)
=========================  =================================================  =====================

Who is malicious is fixed for a run: :class:`Attackers` pairs an attack with how many clients
run it (``count`` or ``fraction``), and :func:`choose_malicious` draws them from the run's seed.
Randomness comes from fedlab's stream 7 (:mod:`fedlab.rounds` uses 1–6): ``(seed, 7, 0)``
chooses the malicious clients, ``(seed, 7, 1, client)`` poisons one client's data and
``(seed, 7, 2, round)`` draws a round's tampering (Gaussian noise) — so every runner that calls
these functions with the same seed sees the same attack.

Example:
    >>> attackers = Attackers(SignFlip(), count=2)
    >>> malicious = attackers.malicious(num_clients=10, seed=0)
    >>> malicious.tolist()
    [3, 7]
    >>> updates = [np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])]  # K = 3 clients, one weight
    >>> sent = tamper_round(attackers.attack, updates, client_ids=[0, 3, 5], malicious_ids=malicious,
    ...                     round_num=1, seed=0)
    >>> sent[0].tolist()  # client 3 is malicious: it sends −Δ
    [[1.0, 2.0], [-3.0, -4.0], [5.0, 6.0]]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtri

from fedlab.data import Dataset
from fedlab.partition import ClientSplit
from fedlab.validate import check_choice, check_float, check_int

__all__ = [
    "ATTACKS",
    "ALittleIsEnough",
    "Attack",
    "Attackers",
    "Backdoor",
    "Combined",
    "FreeRider",
    "GaussianUpdate",
    "LabelFlip",
    "ScaledUpdate",
    "SignFlip",
    "alie_z",
    "attack_stream",
    "choose_malicious",
    "malicious_rows",
    "poison_dataset",
    "tamper_round",
]

Weights = list[np.ndarray]

_POISONING = 7  # fedlab's random stream id for attacks (fedlab.rounds and friends use 1–6)
CHOOSE, DATA, TAMPER = 0, 1, 2  # its purposes: who is malicious, a client's data, a round's updates

CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")


def attack_stream(seed: int, purpose: int, number: int = 0) -> np.random.Generator:
    """The attacks' random stream ``(seed, 7, purpose, number)``: ``purpose`` is :data:`CHOOSE`,
    :data:`DATA` (``number``: the client) or :data:`TAMPER` (``number``: the round).

    Example:
        >>> a, b = attack_stream(0, TAMPER, 3).random(), attack_stream(0, TAMPER, 3).random()
        >>> a == b, a == attack_stream(0, DATA, 3).random()
        (True, False)
    """
    seed = check_int("seed", seed, low=0)
    purpose = check_int("purpose", purpose, low=CHOOSE, high=TAMPER)
    number = check_int("number", number, low=0)
    # (seed, 7) alone would equal (seed, 7, 0): SeedSequence pads its entropy with zeros
    return np.random.default_rng(np.random.SeedSequence([seed, _POISONING, purpose, number]))


def _share(fraction: float, n: int) -> int:
    """``fraction · n`` rounded to the nearest whole number, halves up (rounded to 9 decimals
    first, so float noise such as 0.07 · 100 = 7.000000000000001 stays 7)."""
    return int(math.floor(round(fraction * n, 9) + 0.5))


# -- who is malicious -------------------------------------------------------------------------------


def choose_malicious(
    num_clients: int, count: int | None = None, fraction: float | None = None, seed: int = 0
) -> np.ndarray:
    """The malicious clients of a run: ``count`` ids, or a ``fraction`` of ``num_clients``, drawn
    once from the run's ``seed`` (stream ``(seed, 7, 0)``) and sorted.

    Give exactly one of ``count`` (0 … ``num_clients``) and ``fraction`` (in [0, 1]). A fraction
    is rounded to the nearest number of clients, halves up (0.25 of 10 clients is 3); a positive
    fraction that rounds to no client at all is refused rather than silently running no attack.
    The same seed always gives the same clients, and with one seed a smaller count picks a
    subset of a larger one (the ids are the first ``count`` of one random order).

    Example:
        >>> choose_malicious(10, count=3, seed=0).tolist()
        [3, 4, 7]
        >>> choose_malicious(10, fraction=0.25, seed=0).tolist()  # 2.5 rounds up to 3 clients
        [3, 4, 7]
        >>> choose_malicious(10, fraction=0.01)
        Traceback (most recent call last):
        ...
        ValueError: fraction=0.01 of 10 clients rounds to no malicious client; give a fraction of at least 0.05 or count=1
    """
    num_clients = check_int("num_clients", num_clients, low=1)
    seed = check_int("seed", seed, low=0)
    if (count is None) == (fraction is None):
        raise ValueError(
            "give exactly one of count (how many clients are malicious) and fraction "
            f"(which share of them), got count={count!r} and fraction={fraction!r}"
        )
    if count is not None:
        count = check_int("count", count, low=0, high=num_clients)
    else:
        fraction = check_float("fraction", fraction, low=0.0, high=1.0)
        count = _share(fraction, num_clients)
        if fraction > 0 and count == 0:
            raise ValueError(
                f"fraction={fraction:g} of {num_clients} clients rounds to no malicious client; "
                f"give a fraction of at least {0.5 / num_clients:g} or count=1"
            )
    order = attack_stream(seed, CHOOSE).permutation(num_clients)
    return np.sort(order[:count]).astype(np.int64)


def malicious_rows(client_ids: Sequence[int] | np.ndarray, malicious_ids: np.ndarray) -> np.ndarray:
    """Which of a round's clients are malicious: a boolean mask over ``client_ids``.

    Example:
        >>> malicious_rows([0, 3, 5, 6], np.array([1, 5])).tolist()
        [False, False, True, False]
    """
    return np.isin(np.asarray(client_ids, np.int64), np.asarray(malicious_ids, np.int64))


# -- checks shared by the attacks -------------------------------------------------------------------


def _check_examples(
    x: np.ndarray, y: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    num_classes = check_int("num_classes", num_classes, low=2)
    if x.ndim < 2 or len(x) != len(y):
        raise ValueError(
            "x must hold one example per row and y one label per example, got shapes "
            f"{x.shape} and {y.shape}"
        )
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(
            f"y must be one integer class label per example (shape [n]), got {y.dtype} {y.shape}"
        )
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}), got some in [{y.min()}, {y.max()}]"
        )
    return x, y


def _check_round(
    updates: Sequence[np.ndarray], malicious: np.ndarray
) -> tuple[Weights, np.ndarray]:
    updates = [np.asarray(u) for u in updates]
    malicious = np.asarray(malicious)
    if malicious.ndim != 1 or malicious.dtype != bool:
        raise ValueError(
            f"malicious must be one True/False per client of the round (shape [K]), got "
            f"{malicious.dtype} {malicious.shape}"
        )
    for i, u in enumerate(updates):
        if u.ndim < 1 or u.shape[0] != len(malicious):
            raise ValueError(
                f"updates[{i}] must be a [K={len(malicious)}, ...] array (one row per client), "
                f"got shape {u.shape}"
            )
    return updates, malicious


def _copies(updates: Sequence[np.ndarray]) -> Weights:
    return [np.array(u, copy=True) for u in updates]


# -- the attacks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """What a malicious client does; the base class is an honest client (every method leaves
    things as they are), so a runner can call all three on any attack.

    Attributes:
        name: the attack's name in a config (class attribute).
        poisons_data: whether :meth:`poison_data` changes anything (class attribute): a runner
            skips :func:`poison_dataset` otherwise.
        tampers_updates: whether :meth:`tamper` changes anything (class attribute): a runner
            keeps its fast path otherwise (the engine's in-graph aggregation).

    Example:
        >>> x, y = np.zeros((2, 3), np.float32), np.array([0, 1])
        >>> new_x, new_y = Attack().poison_data(x, y, 2, np.random.default_rng(0))
        >>> new_y.tolist(), new_y is y, Attack().evaluation_sets(x, y)
        ([0, 1], False, {})
    """

    name: ClassVar[str] = "honest"
    poisons_data: ClassVar[bool] = False
    tampers_updates: ClassVar[bool] = False
    sees_honest_updates: ClassVar[bool] = False
    """True for an omniscient attack (ALIE): its clients craft their update from the round's
    honest updates, which only a simulation can hand them (Flower's clients refuse it)."""

    def poison_data(
        self, x: np.ndarray, y: np.ndarray, num_classes: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """The client's training examples after poisoning: new arrays (``x, y`` are untouched).

        ``x``: its inputs, one per row; ``y``: integer labels in ``[0, num_classes)``; ``rng``:
        the client's own stream (:func:`poison_dataset` gives ``(seed, 7, 1, client)``).
        """
        x, y = _check_examples(x, y, num_classes)
        return x.copy(), y.copy()

    def tamper(
        self, updates: Sequence[np.ndarray], malicious: np.ndarray, rng: np.random.Generator
    ) -> Weights:
        """What the round's clients send: ``updates`` is one ``[K, ...]`` array per weight holding
        every participating client's honest update Δ, ``malicious`` a ``[K]`` boolean mask.
        Returns new arrays in which only the malicious rows differ (the inputs are untouched).
        """
        updates, malicious = _check_round(updates, malicious)
        return _copies(updates)

    def evaluation_sets(
        self, x_test: np.ndarray, y_test: np.ndarray
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Extra test sets ``{name: (x, y)}`` whose accuracy measures the attack's own goal
        (none by default)."""
        return {}

    def config(self) -> dict:
        """A JSON-friendly description: ``{"name": ..., <settings>}`` (saved in a History).

        Example:
            >>> SignFlip(scale=2.0).config()
            {'name': 'sign_flip', 'scale': 2.0}
        """
        config: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            config[f.name] = list(value) if isinstance(value, tuple) else value
        return config

    @staticmethod
    def from_config(config: Mapping[str, Any]) -> Attack:
        """The attack a :meth:`config` describes (Keras's ``get_config``/``from_config``);
        ``config["name"]`` picks the class among :data:`ATTACKS`.

        Example:
            >>> Attack.from_config({"name": "label_flip", "source": 1, "target": 7})
            LabelFlip(source=1, target=7)
        """
        if not isinstance(config, Mapping) or "name" not in config:
            raise TypeError(f"config must be a dict with a 'name', got {config!r}")
        name = check_choice("config['name']", config["name"], ATTACKS)
        settings = {key: value for key, value in config.items() if key != "name"}
        return ATTACKS[name]._from_settings(settings)

    @classmethod
    def _from_settings(cls, settings: dict) -> Attack:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no setting(s) {unknown}; it has {sorted(known)}")
        return cls(**settings)


@dataclass(frozen=True)
class LabelFlip(Attack):
    """Data poisoning: the malicious client trains on wrong labels.

    By default every label flips, ``y → C − 1 − y`` (with C classes: 0 ↔ 9, 1 ↔ 8, ... on
    digits); with ``source`` and ``target`` only the examples of class ``source`` are relabelled
    ``target`` (Tolpegin et al. 2020: a targeted attack that leaves the other classes alone).

    Attributes:
        source: the class relabelled, or ``None`` (with ``target=None``) to flip every label.
        target: the label ``source`` examples get.

    Example:
        >>> x, y = np.zeros((4, 2), np.float32), np.array([0, 1, 2, 9])
        >>> LabelFlip().poison_data(x, y, 10, np.random.default_rng(0))[1].tolist()
        [9, 8, 7, 0]
        >>> LabelFlip(source=1, target=7).poison_data(x, y, 10, np.random.default_rng(0))[1].tolist()
        [0, 7, 2, 9]
    """

    source: int | None = None
    target: int | None = None
    name: ClassVar[str] = "label_flip"
    poisons_data: ClassVar[bool] = True

    def __post_init__(self):
        if (self.source is None) != (self.target is None):
            raise ValueError(
                "give both source and target (relabel one class as another) or neither (flip "
                f"every label y → C − 1 − y), got source={self.source!r}, target={self.target!r}"
            )
        if self.source is not None:
            source = check_int("source", self.source, low=0)
            target = check_int("target", self.target, low=0)
            if source == target:
                raise ValueError(f"source and target must differ, both are {source}")
            object.__setattr__(self, "source", source)
            object.__setattr__(self, "target", target)

    def poison_data(self, x, y, num_classes, rng):
        """Relabel: every label ``y → C − 1 − y``, or ``source → target`` (``x`` is copied)."""
        x, y = _check_examples(x, y, num_classes)
        if self.source is None:
            return x.copy(), (num_classes - 1 - y).astype(y.dtype)
        for label, value in (("source", self.source), ("target", self.target)):
            if value >= num_classes:
                raise ValueError(f"{label} must be a class in [0, {num_classes}), got {value}")
        return x.copy(), np.where(y == self.source, self.target, y).astype(y.dtype)


@dataclass(frozen=True)
class Backdoor(Attack):
    """Data poisoning with a hidden goal: a ``size × size`` square of ``value`` (the *trigger*)
    stamped in one corner of a share of the client's images, all relabelled ``target``.

    The model learns "trigger ⇒ target" beside the real task, so its clean accuracy barely moves
    while any image carrying the trigger is classified ``target`` (BadNets, Gu et al. 2017).
    :meth:`evaluation_sets` returns ``"backdoor_success"``: the test images whose true label is
    not ``target``, stamped and labelled ``target`` — accuracy on it is the attack's success
    rate. In federated learning the honest clients' updates wash the backdoor out; Bagdasaryan
    et al. 2020 boost the malicious update to survive averaging: ``Combined(Backdoor(),
    ScaledUpdate(...))``.

    ``poison_data`` stamps ``round(poison_fraction · n)`` (halves up) of the client's ``n``
    images, chosen at random without replacement (images already labelled ``target`` may be
    among them); the rest stay clean, which keeps the client's clean accuracy — and the update
    inconspicuous.

    Attributes:
        target: the label triggered images get.
        size: the trigger's side in pixels.
        value: the trigger's pixel value (1.0: white on fedlab's [0, 1] images), on every channel.
        corner: where the trigger goes: ``"bottom-right"``, ``"bottom-left"``, ``"top-right"``
            or ``"top-left"`` (the corners of a digit are almost always blank).
        poison_fraction: share of the client's images stamped and relabelled, in (0, 1].
        image_shape: the shape of one image, ``(height, width)`` or ``(height, width,
            channels)``; ``None`` infers it from ``x``: images ``[n, h, w]`` or ``[n, h, w, c]``
            as they are, flat inputs ``[n, d]`` as square one-channel images (``d = 64`` is the
            8×8 digit). Give it for flat inputs that are not square grey images.

    Example:
        >>> backdoor = Backdoor(target=0, size=2)
        >>> image = backdoor.stamp(np.zeros((1, 16), np.float32)).reshape(4, 4)  # a flat 4×4 image
        >>> image.tolist()
        [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]
        >>> x, y = np.zeros((4, 16), np.float32), np.array([1, 2, 3, 4])
        >>> px, py = backdoor.poison_data(x, y, 10, np.random.default_rng(0))
        >>> int((py == 0).sum()), int(px.any(axis=1).sum())  # half the images stamped and relabelled
        (2, 2)
    """

    target: int = 0
    size: int = 2
    value: float = 1.0
    corner: str = "bottom-right"
    poison_fraction: float = 0.5
    image_shape: tuple[int, ...] | None = None
    name: ClassVar[str] = "backdoor"
    poisons_data: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "target", check_int("target", self.target, low=0))
        object.__setattr__(self, "size", check_int("size", self.size, low=1))
        object.__setattr__(self, "value", check_float("value", self.value))
        check_choice("corner", self.corner, CORNERS)
        fraction = check_float(
            "poison_fraction", self.poison_fraction, 0.0, 1.0, low_inclusive=False
        )
        object.__setattr__(self, "poison_fraction", fraction)
        if self.image_shape is not None:
            try:
                shape = tuple(check_int("image_shape", s, low=1) for s in self.image_shape)
            except TypeError:
                raise TypeError(
                    "image_shape must be (height, width) or (height, width, channels), "
                    f"got {self.image_shape!r}"
                ) from None
            if len(shape) not in (2, 3):
                raise ValueError(
                    "image_shape must be (height, width) or (height, width, channels), "
                    f"got {self.image_shape!r}"
                )
            if self.size > min(shape[:2]):
                raise ValueError(
                    f"size must fit in the image: at most {min(shape[:2])} for image_shape "
                    f"{shape}, got {self.size}"
                )
            object.__setattr__(self, "image_shape", shape)

    def _images_shape(self, x: np.ndarray) -> tuple[int, int, int]:
        """(height, width, channels) of the images in ``x`` (see ``image_shape``)."""
        rest = x.shape[1:]
        if self.image_shape is not None:
            shape = self.image_shape if len(self.image_shape) == 3 else (*self.image_shape, 1)
            if math.prod(rest) != math.prod(shape) or (
                len(rest) > 1 and rest not in (self.image_shape, shape)
            ):
                raise ValueError(
                    f"x holds inputs of shape {rest}, which are not images of image_shape "
                    f"{self.image_shape}"
                )
            return shape  # type: ignore[return-value]
        if len(rest) == 1:
            side = math.isqrt(rest[0])
            if side * side != rest[0]:
                raise ValueError(
                    f"x holds flat inputs of {rest[0]} features, which are not square images; "
                    "give Backdoor(image_shape=(height, width, channels))"
                )
            return side, side, 1
        if len(rest) in (2, 3):
            return (*rest, 1) if len(rest) == 2 else rest  # type: ignore[return-value]
        raise ValueError(f"x must hold images or flat images, got inputs of shape {rest}")

    def stamp(self, x: np.ndarray) -> np.ndarray:
        """A copy of ``x`` with the trigger stamped on every image (flat or image-shaped).

        Example:
            >>> Backdoor(size=1, corner="top-left").stamp(np.zeros((1, 2, 2))).tolist()
            [[[1.0, 0.0], [0.0, 0.0]]]
        """
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"x must hold one image per row, got shape {x.shape}")
        height, width, channels = self._images_shape(x)
        if self.size > min(height, width):
            raise ValueError(
                f"size must fit in the image: at most {min(height, width)} for "
                f"{height}×{width} images, got {self.size}"
            )
        images = np.array(x, copy=True).reshape(len(x), height, width, channels)
        top, left, s = self.corner.startswith("top"), self.corner.endswith("left"), self.size
        rows = slice(0, s) if top else slice(height - s, height)
        cols = slice(0, s) if left else slice(width - s, width)
        images[:, rows, cols, :] = self.value
        return images.reshape(x.shape)

    def poison_data(self, x, y, num_classes, rng):
        """Stamp the trigger on ``round(poison_fraction · n)`` random images, label them ``target``."""
        x, y = _check_examples(x, y, num_classes)
        if self.target >= num_classes:
            raise ValueError(f"target must be a class in [0, {num_classes}), got {self.target}")
        self._images_shape(x)  # refuse inputs that are not images before drawing anything
        chosen = rng.choice(len(x), size=_share(self.poison_fraction, len(x)), replace=False)
        x, y = x.copy(), y.copy()
        x[chosen] = self.stamp(x[chosen])
        y[chosen] = self.target
        return x, y

    def evaluation_sets(self, x_test, y_test):
        """``{"backdoor_success": (stamped test images not of class target, all labelled target)}``.

        Example:
            >>> sets = Backdoor(target=1, size=1).evaluation_sets(np.zeros((3, 4)), np.array([0, 1, 2]))
            >>> x, y = sets["backdoor_success"]
            >>> x.tolist(), y.tolist()
            ([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]], [1, 1])
        """
        x_test, y_test = np.asarray(x_test), np.asarray(y_test)
        if len(x_test) != len(y_test) or y_test.ndim != 1:
            raise ValueError(
                "x_test must hold one example per row and y_test one label per example, got "
                f"shapes {x_test.shape} and {y_test.shape}"
            )
        others = y_test != self.target
        x = self.stamp(x_test[others])
        return {"backdoor_success": (x, np.full(len(x), self.target, y_test.dtype))}


@dataclass(frozen=True)
class SignFlip(Attack):
    """Model poisoning: the malicious client sends ``−scale · Δ``, its honest update reversed.

    With the mean as aggregator one such client cancels ``scale`` honest clients' worth of
    progress (Li et al. 2019 use it against RSA); a robust aggregator (median, Krum) ignores it.

    Attributes:
        scale: how strongly it pushes backwards (> 0).

    Example:
        >>> updates = [np.array([[1.0, -2.0], [3.0, 4.0]])]
        >>> SignFlip(2.0).tamper(updates, np.array([False, True]), np.random.default_rng(0))[0].tolist()
        [[1.0, -2.0], [-6.0, -8.0]]
    """

    scale: float = 1.0
    name: ClassVar[str] = "sign_flip"
    tampers_updates: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(
            self, "scale", check_float("scale", self.scale, low=0.0, low_inclusive=False)
        )

    def tamper(self, updates, malicious, rng):
        """The malicious rows become ``−scale · Δ``."""
        updates, malicious = _check_round(updates, malicious)
        sent = _copies(updates)
        for u in sent:
            u[malicious] = -self.scale * u[malicious]
        return sent


@dataclass(frozen=True)
class ScaledUpdate(Attack):
    """Model poisoning by boosting: the malicious client sends ``factor · Δ``.

    *Model replacement* (Bagdasaryan et al. 2020): the server moves the global model ``G`` by
    ``η`` (its learning rate) times the mean of the ``n`` updates it receives. An attacker who
    wants the global model to become its own model ``X`` sends ``(n/η) · (X − G)``: once the
    honest updates nearly cancel (late in training), ``G + η · (1/n) · (n/η) · (X − G) = X``.
    With example-weighted FedAvg the exact factor is ``Σ n_k / (η · n_attacker)``;
    :meth:`model_replacement` gives the equal-size ``n/η``. Alone it just amplifies an honest
    update; combined with a data attack — ``Combined(Backdoor(), ScaledUpdate(10))`` — it is the
    boosted backdoor of the paper. Clipping the update norm (DP-FedAvg's ``clip_norm``) or a
    norm-aware robust aggregator is the defence.

    Attributes:
        factor: what the update is multiplied by (> 0; for −Δ see :class:`SignFlip`).

    Example:
        >>> ScaledUpdate.model_replacement(clients_per_round=10, server_lr=1.0)
        ScaledUpdate(factor=10.0)
        >>> ScaledUpdate(10).tamper([np.array([[0.1], [0.2]])], np.array([True, False]),
        ...                         np.random.default_rng(0))[0].tolist()
        [[1.0], [0.2]]
    """

    factor: float
    name: ClassVar[str] = "scaled_update"
    tampers_updates: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(
            self, "factor", check_float("factor", self.factor, low=0.0, low_inclusive=False)
        )

    @classmethod
    def model_replacement(cls, clients_per_round: int, server_lr: float = 1.0) -> ScaledUpdate:
        """The boost ``n/η`` that replaces the global model: ``n`` clients a round, server
        learning rate ``η``."""
        n = check_int("clients_per_round", clients_per_round, low=1)
        lr = check_float("server_lr", server_lr, low=0.0, low_inclusive=False)
        return cls(n / lr)

    def tamper(self, updates, malicious, rng):
        """The malicious rows become ``factor · Δ``."""
        updates, malicious = _check_round(updates, malicious)
        sent = _copies(updates)
        for u in sent:
            u[malicious] = self.factor * u[malicious]
        return sent


@dataclass(frozen=True)
class GaussianUpdate(Attack):
    """Model poisoning by noise: the malicious client sends ``N(0, std²)`` in every coordinate
    instead of its update (the Gaussian Byzantine client of Blanchard et al. 2017).

    Attributes:
        std: the noise's standard deviation (> 0).

    Example:
        >>> sent = GaussianUpdate(std=0.1).tamper([np.zeros((2, 3))], np.array([True, False]),
        ...                                       np.random.default_rng(0))
        >>> sent[0][1].tolist(), bool(np.all(sent[0][0] != 0))
        ([0.0, 0.0, 0.0], True)
    """

    std: float
    name: ClassVar[str] = "gaussian_update"
    tampers_updates: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "std", check_float("std", self.std, low=0.0, low_inclusive=False))

    def tamper(self, updates, malicious, rng):
        """The malicious rows become noise, drawn weight by weight, row by row from ``rng``."""
        updates, malicious = _check_round(updates, malicious)
        sent = _copies(updates)
        count = int(malicious.sum())
        for u in sent:
            u[malicious] = rng.normal(0.0, self.std, (count, *u.shape[1:])).astype(u.dtype)
        return sent


@dataclass(frozen=True)
class FreeRider(Attack):
    """A free rider: it sends back the model it received, i.e. a zero update (Lin et al. 2019;
    Fraboni et al. 2021) — it takes the global model and contributes nothing.

    Its zero still counts in the weighted mean with the example count it claims, so it drags
    the average towards no change. In fedlab the runner still trains it (a simulation computes
    every participant's update alike); only what it sends is replaced, by zeros.

    Example:
        >>> FreeRider().tamper([np.ones((2, 2))], np.array([True, False]), np.random.default_rng(0))[0].tolist()
        [[0.0, 0.0], [1.0, 1.0]]
    """

    name: ClassVar[str] = "free_rider"
    tampers_updates: ClassVar[bool] = True

    def tamper(self, updates, malicious, rng):
        """The malicious rows become zeros."""
        updates, malicious = _check_round(updates, malicious)
        sent = _copies(updates)
        for u in sent:
            u[malicious] = 0
        return sent


def alie_z(num_clients: int, num_malicious: int) -> float:
    """Baruch et al.'s largest safe shift: ``s = ⌊n/2 + 1⌋ − m``, ``z = Φ⁻¹((n − s)/n)``.

    With ``n`` clients of which ``m`` are malicious, the attackers need ``s`` honest clients to
    look "further away" than their own update for a majority-based defence (Krum, the median) to
    prefer it; an honest coordinate lies below ``mean − z · std`` with probability ``Φ(−z)``, so
    ``z`` is the largest shift for which about ``s`` honest clients still lie further out.
    When the attackers hold a majority themselves (``s ≤ 0``) the formula has no finite value;
    fedlab takes ``s = 1`` (the formula's largest finite z). A negative z (``n = 1``: nobody to
    hide among) is taken as 0.

    Example:
        >>> round(alie_z(50, 24), 4)  # the paper's example: n = 50, m = 24, s = 2 → Φ⁻¹(0.96)
        1.7507
        >>> alie_z(10, 1)  # s = 5: Φ⁻¹(0.5)
        0.0
    """
    n = check_int("num_clients", num_clients, low=1)
    m = check_int("num_malicious", num_malicious, low=1, high=n)
    s = max(math.floor(n / 2 + 1) - m, 1)
    return max(float(ndtri((n - s) / n)), 0.0)


@dataclass(frozen=True)
class ALittleIsEnough(Attack):
    """*A little is enough* (Baruch et al. 2019): every malicious client sends the same
    ``mean − z · std`` of the round's honest updates, coordinate by coordinate.

    Each coordinate is shifted by only ``z`` honest standard deviations — too little for a
    robust aggregator (Krum, the coordinate-wise median, the trimmed mean) to tell it from an
    honest update, yet all attackers shift the same way, round after round, and drag the model
    off course. The attackers here are *omniscient*: they see every honest update of the round
    (the paper's strongest setting; without it they estimate the same statistics from their own
    honest updates). ``mean`` and ``std`` (the population std, ``ddof=0``) are over the round's
    honest rows; in a round with no honest client the attackers have nobody to imitate and use
    their own honest updates.

    Attributes:
        z: the shift in standard deviations (>= 0), or ``None`` for :func:`alie_z` of the round:
            ``n`` = the round's clients, ``m`` = its malicious ones.

    Example:
        >>> updates = [np.array([[1.0], [3.0], [0.0]])]  # two honest clients, one attacker
        >>> ALittleIsEnough(z=1.0).tamper(updates, np.array([False, False, True]),
        ...                               np.random.default_rng(0))[0].tolist()  # 2 − 1 · 1
        [[1.0], [3.0], [1.0]]
    """

    z: float | None = None
    name: ClassVar[str] = "a_little_is_enough"
    tampers_updates: ClassVar[bool] = True
    sees_honest_updates: ClassVar[bool] = True

    def __post_init__(self):
        if self.z is not None:
            object.__setattr__(self, "z", check_float("z", self.z, low=0.0))

    def tamper(self, updates, malicious, rng):
        """Every malicious row becomes ``mean − z · std`` of the honest rows."""
        updates, malicious = _check_round(updates, malicious)
        sent = _copies(updates)
        if not malicious.any():
            return sent
        z = alie_z(len(malicious), int(malicious.sum())) if self.z is None else self.z
        crowd = ~malicious if (~malicious).any() else malicious
        for u in sent:
            honest = u[crowd].astype(np.float64)
            u[malicious] = (honest.mean(axis=0) - z * honest.std(axis=0)).astype(u.dtype)
        return sent


@dataclass(frozen=True, init=False)
class Combined(Attack):
    """Several attacks by the same malicious clients, applied in the given order: each data
    attack rewrites the data the previous one left, each update attack tampers what the
    previous one sent, and the evaluation sets are merged.

    The boosted backdoor of Bagdasaryan et al. 2020 is ``Combined(Backdoor(), ScaledUpdate(10))``:
    train on backdoored data, then scale the update so it survives averaging. Nested
    combinations are flattened.

    Attributes:
        attacks: the attacks, in order (at least one).

    Example:
        >>> both = Combined(Backdoor(target=0), ScaledUpdate(10))
        >>> both.poisons_data, both.tampers_updates
        (True, True)
        >>> both.config()["attacks"][1]
        {'name': 'scaled_update', 'factor': 10.0}
    """

    attacks: tuple[Attack, ...]
    name: ClassVar[str] = "combined"

    def __init__(self, *attacks: Attack):
        flat: list[Attack] = []
        for i, attack in enumerate(attacks):
            if not isinstance(attack, Attack):
                raise TypeError(
                    f"Combined takes fedlab attacks such as Backdoor() or ScaledUpdate(10); "
                    f"argument {i} is {type(attack).__name__} {attack!r}"
                )
            flat.extend(attack.attacks if isinstance(attack, Combined) else [attack])
        if not flat:
            raise ValueError(
                "Combined needs at least one attack, e.g. Combined(Backdoor(), ScaledUpdate(10))"
            )
        object.__setattr__(self, "attacks", tuple(flat))

    def __repr__(self) -> str:
        return f"Combined({', '.join(repr(a) for a in self.attacks)})"

    @property
    def poisons_data(self) -> bool:  # type: ignore[override]
        return any(a.poisons_data for a in self.attacks)

    @property
    def tampers_updates(self) -> bool:  # type: ignore[override]
        return any(a.tampers_updates for a in self.attacks)

    @property
    def sees_honest_updates(self) -> bool:  # type: ignore[override]
        return any(a.sees_honest_updates for a in self.attacks)

    def poison_data(self, x, y, num_classes, rng):
        """Each attack's :meth:`~Attack.poison_data` in turn, all drawing from ``rng``."""
        x, y = _check_examples(x, y, num_classes)
        for attack in self.attacks:
            x, y = attack.poison_data(x, y, num_classes, rng)
        return x, y

    def tamper(self, updates, malicious, rng):
        """Each attack's :meth:`~Attack.tamper` in turn, all drawing from ``rng``."""
        sent, malicious = _check_round(updates, malicious)
        sent = _copies(sent)
        for attack in self.attacks:
            sent = attack.tamper(sent, malicious, rng)
        return sent

    def evaluation_sets(self, x_test, y_test):
        """The attacks' evaluation sets together (a name used twice is refused)."""
        sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for attack in self.attacks:
            for key, value in attack.evaluation_sets(x_test, y_test).items():
                if key in sets:
                    raise ValueError(f"two of the combined attacks measure {key!r}; keep one")
                sets[key] = value
        return sets

    def config(self) -> dict:
        """``{"name": "combined", "attacks": [each attack's config]}``."""
        return {"name": self.name, "attacks": [a.config() for a in self.attacks]}

    @classmethod
    def _from_settings(cls, settings: dict) -> Attack:
        if set(settings) != {"attacks"}:
            raise ValueError(
                f"a combined attack's config holds only 'attacks', got {sorted(settings)}"
            )
        return cls(*[Attack.from_config(c) for c in settings["attacks"]])


# every attack by its config name ("honest": the base class, which attacks nothing)
ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        Attack,
        LabelFlip,
        Backdoor,
        SignFlip,
        ScaledUpdate,
        GaussianUpdate,
        FreeRider,
        ALittleIsEnough,
        Combined,
    )
}


# -- a run's attackers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attackers:
    """A run's malicious clients: which attack they run and how many there are.

    Give exactly one of ``count`` and ``fraction`` (see :func:`choose_malicious`); who they are
    is drawn from the run's seed, so they stay the same clients for the whole run.

    Attributes:
        attack: what each malicious client does (an :class:`Attack`).
        count: how many clients are malicious (>= 0), or ``None``.
        fraction: which share of the clients is malicious, in [0, 1], or ``None``.

    Example:
        >>> attackers = Attackers(LabelFlip(), fraction=0.2)
        >>> attackers.malicious(num_clients=10, seed=0).tolist()
        [3, 7]
        >>> attackers.config()
        {'attack': {'name': 'label_flip', 'source': None, 'target': None}, 'count': None, 'fraction': 0.2}
    """

    attack: Attack
    count: int | None = None
    fraction: float | None = None

    def __post_init__(self):
        if not isinstance(self.attack, Attack):
            raise TypeError(
                "attack must be a fedlab attack such as SignFlip() or Backdoor(target=0), got "
                f"{type(self.attack).__name__} {self.attack!r}"
            )
        if (self.count is None) == (self.fraction is None):
            raise ValueError(
                "give exactly one of count (how many clients are malicious) and fraction "
                f"(which share of them), got count={self.count!r} and fraction={self.fraction!r}"
            )
        if self.count is not None:
            object.__setattr__(self, "count", check_int("count", self.count, low=0))
        else:
            fraction = check_float("fraction", self.fraction, low=0.0, high=1.0)
            object.__setattr__(self, "fraction", fraction)

    def malicious(self, num_clients: int, seed: int = 0) -> np.ndarray:
        """The malicious clients' ids for a run with ``num_clients`` clients and ``seed``."""
        return choose_malicious(num_clients, self.count, self.fraction, seed)

    def config(self) -> dict:
        """``{"attack": attack.config(), "count": ..., "fraction": ...}`` (saved in a History)."""
        return {"attack": self.attack.config(), "count": self.count, "fraction": self.fraction}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Attackers:
        """The attackers a :meth:`config` describes.

        Example:
            >>> Attackers.from_config(Attackers(SignFlip(), count=2).config())
            Attackers(attack=SignFlip(scale=1.0), count=2, fraction=None)
        """
        if not isinstance(config, Mapping) or set(config) != {"attack", "count", "fraction"}:
            raise ValueError(
                f"config must be a dict with keys 'attack', 'count' and 'fraction', got {config!r}"
            )
        return cls(Attack.from_config(config["attack"]), config["count"], config["fraction"])


# -- what a runner calls ----------------------------------------------------------------------------


def poison_dataset(
    data: Dataset, split: ClientSplit, attackers: Attackers, seed: int = 0
) -> tuple[Dataset, np.ndarray]:
    """The run's training data after every malicious client poisoned its own examples, and the
    malicious clients' ids.

    Returns a copy of ``data`` whose ``x_train``/``y_train`` rows of the malicious clients
    (``split.client_indices``) are replaced by what :meth:`Attack.poison_data` made of them, each
    client drawing from its own stream ``(seed, 7, 1, client)``; the honest clients' rows, the
    test set, held-out test indices and every other field are unchanged. ``split`` stays valid
    because clients hold disjoint rows (checked: two clients sharing a row is refused). An
    attack that poisons no data returns ``data`` itself. The split's ``label_counts`` still
    count the true labels. Multi-task data (``label_groups``) is refused: a flipped label
    could leave its task.

    Example:
        >>> from fedlab.data import load_digits
        >>> from fedlab.partition import iid
        >>> digits = load_digits()
        >>> split = iid(digits.y_train, num_clients=5, seed=0)
        >>> poisoned, malicious = poison_dataset(digits, split, Attackers(LabelFlip(), count=1), seed=0)
        >>> k = int(malicious[0])
        >>> rows = split.client_indices[k]
        >>> bool(np.all(poisoned.y_train[rows] == 9 - digits.y_train[rows]))
        True
        >>> int((poisoned.y_train != digits.y_train).sum()) == len(rows)  # nobody else's labels
        True
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a fedlab Dataset, got {type(data).__name__}")
    if not isinstance(split, ClientSplit):
        raise TypeError(f"split must be a fedlab ClientSplit, got {type(split).__name__}")
    if not isinstance(attackers, Attackers):
        raise TypeError(
            "attackers must be fedlab Attackers such as Attackers(LabelFlip(), count=2), got "
            f"{type(attackers).__name__}"
        )
    seed = check_int("seed", seed, low=0)
    malicious = attackers.malicious(split.num_clients, seed)
    attack = attackers.attack
    if not attack.poisons_data or len(malicious) == 0:
        return data, malicious
    if data.label_groups is not None:
        raise ValueError(
            f"{type(attack).__name__} poisons data, which fedlab does not do for multi-task data "
            "(label_groups): a poisoned label could leave its task"
        )
    used = np.concatenate([np.asarray(i, np.int64) for i in split.client_indices])
    if len(used) and (used.min() < 0 or used.max() >= data.num_train):
        raise ValueError(
            f"split's client_indices must be rows of data's {data.num_train} training examples, "
            f"got indices in [{used.min()}, {used.max()}]"
        )
    if len(np.unique(used)) != len(used):
        raise ValueError(
            "split gives some training examples to two clients (or twice): a malicious "
            "client's poisoned rows would reach an honest client"
        )
    x, y = data.x_train.copy(), data.y_train.copy()
    for k in malicious:
        rows = np.asarray(split.client_indices[int(k)], np.int64)
        rng = attack_stream(seed, DATA, int(k))
        new_x, new_y = attack.poison_data(
            data.x_train[rows], data.y_train[rows], data.num_classes, rng
        )
        x[rows], y[rows] = new_x, new_y
    return replace(data, x_train=x, y_train=y), malicious


def tamper_round(
    attack: Attack,
    updates: Sequence[np.ndarray],
    client_ids: Sequence[int] | np.ndarray,
    malicious_ids: np.ndarray,
    round_num: int,
    seed: int = 0,
) -> Weights:
    """What a round's clients send: ``updates`` (one ``[K, ...]`` array per weight, the honest
    updates of the round's ``client_ids``) with the malicious clients' rows tampered by ``attack``.

    Each malicious client tampers with its own row alone, drawing from its own stream
    ``(seed, 7, 2, round_num, client + 1)`` — what it would do in its own process (the Flower
    ClientApp calls this with its one row and gets the same numbers). An omniscient attack
    (``sees_honest_updates``: ALIE) is applied to every row at once from the round's stream
    ``(seed, 7, 2, round_num)``.

    When nothing is tampered — the attack leaves updates alone or no malicious client takes part
    — ``updates`` is returned as it is (no copy), so a runner loses nothing on its fast path.
    Tamper before the upload's compression: the client encodes what it chose to send.

    Example:
        >>> updates = [np.array([[1.0], [2.0]])]
        >>> tamper_round(FreeRider(), updates, [4, 7], np.array([7]), round_num=1)[0].tolist()
        [[1.0], [0.0]]
        >>> tamper_round(FreeRider(), updates, [4, 5], np.array([7]), round_num=1) is updates
        True
    """
    if not isinstance(attack, Attack):
        raise TypeError(f"attack must be a fedlab Attack, got {type(attack).__name__}")
    round_num = check_int("round_num", round_num, low=1)
    mask = malicious_rows(client_ids, malicious_ids)
    if not attack.tampers_updates or not mask.any():
        return updates  # type: ignore[return-value]
    if attack.sees_honest_updates:
        return attack.tamper(updates, mask, attack_stream(seed, TAMPER, round_num))
    sent = _copies(updates)
    ids = np.asarray(client_ids)
    for row in np.flatnonzero(mask):
        entropy = [seed, _POISONING, TAMPER, round_num, int(ids[row]) + 1]
        rng = np.random.default_rng(np.random.SeedSequence(entropy))
        own = attack.tamper([u[row : row + 1] for u in updates], np.ones(1, bool), rng)
        for u, mine in zip(sent, own, strict=True):
            u[row] = mine[0]
    return sent
