"""Aggregating LoRA adapters, done honestly (``09_federated_fine_tuning_with_lora``).

A LoRA adapter changes a ``d_in x d_out`` weight ``W`` into ``W + (alpha / r) * A @ B`` with
``A: [d_in, r]`` and ``B: [r, d_out]``. This is Keras 3's convention: ``Dense.enable_lora(r,
lora_alpha=None)`` adds ``lora_kernel_a`` of shape ``(d_in, r)`` (He-uniform) and
``lora_kernel_b`` of shape ``(r, d_out)`` (zeros), freezes the kernel and computes ``x @ (W +
(lora_alpha / r) * A @ B) + bias``; ``lora_alpha`` defaults to ``r``, so the scale is 1 unless
you pass it (see :func:`merged_kernel`). When every client uses the same ``alpha`` and ``r`` the
scale is a common factor and drops out of every identity below, so the functions here work on
``A @ B`` alone.

FedAvg wants the average of the clients' *updates*, ``sum_k p_k A_k B_k``
(:func:`average_of_products`). Averaging each factor separately, as "FedAvg on the trainable
weights" does, gives ``(sum_k p_k A_k)(sum_k p_k B_k)`` (:func:`product_of_averages`) instead.
Writing ``Abar = sum_k p_k A_k`` and ``Bbar = sum_k p_k B_k``, the two differ by the weighted
covariance of the factors across clients (the cross terms)::

    sum_k p_k A_k B_k - Abar Bbar = sum_k p_k (A_k - Abar)(B_k - Bbar)
                                  = 1/2 sum_{j,k} p_j p_k (A_j - A_k)(B_j - B_k)

For two clients with weights 1/2, 1/2 that is ``1/4 (A_1 - A_2)(B_1 - B_2)``. It vanishes with
one client, when all ``A_k`` are equal or all ``B_k`` are equal, and in general nowhere else.
Two exact alternatives: freeze a shared ``A`` and train only ``B``
(:func:`aggregate_frozen_a`, as in FFA-LoRA, Sun et al. 2024), or average the products and
re-factorise them with a truncated SVD (:func:`aggregate_svd`). Clients with different ranks
can be zero-padded to the largest rank (:func:`pad_factors`), which is naive averaging again,
with the same bias; :func:`aggregate_svd` takes different ranks as they are.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from fedlab.controls import panel_bundle
from fedlab.plot import Drawn, _axes
from fedlab.validate import check_float, check_int

# ---------------------------------------------------------------------------------------------
# Argument checks


def _weights(weights: ArrayLike | None, num_clients: int) -> np.ndarray:
    """Client weights ``p_k`` normalised to sum to 1 (uniform when ``None``)."""
    if weights is None:
        return np.full(num_clients, 1.0 / num_clients)
    p = np.asarray(weights, dtype=np.float64)
    if p.shape != (num_clients,):
        raise ValueError(f"weights must hold one number per client ({num_clients}), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"weights must be finite and non-negative, got {p.tolist()}")
    if p.sum() <= 0:
        raise ValueError(f"weights must have a positive sum, got {p.tolist()}")
    return p / p.sum()


def _matrix(name: str, value: ArrayLike) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {array.shape}")
    return array


def _factors(As: Sequence[ArrayLike], Bs: Sequence[ArrayLike]) -> tuple[list, list]:
    """The clients' factors as float64 matrices, checked: ``A_k [d_in, r_k]``, ``B_k [r_k, d_out]``."""
    As = [_matrix(f"As[{k}]", a) for k, a in enumerate(As)]
    Bs = [_matrix(f"Bs[{k}]", b) for k, b in enumerate(Bs)]
    if not As or len(As) != len(Bs):
        raise ValueError(
            f"As and Bs must hold one factor per client, at least one, got {len(As)} and {len(Bs)}"
        )
    d_in, d_out = As[0].shape[0], Bs[0].shape[1]
    for k, (a, b) in enumerate(zip(As, Bs, strict=True)):
        if a.shape[0] != d_in or b.shape[1] != d_out or a.shape[1] != b.shape[0]:
            raise ValueError(
                f"client {k}: A must be [d_in, r] and B [r, d_out] with d_in={d_in}, "
                f"d_out={d_out} as for client 0, got A {a.shape} and B {b.shape}"
            )
    return As, Bs


# ---------------------------------------------------------------------------------------------
# The two aggregates and the gap between them


def merged_kernel(
    kernel: ArrayLike, A: ArrayLike, B: ArrayLike, alpha: float | None = None
) -> np.ndarray:
    """The weight a LoRA layer computes with: ``kernel + (alpha / r) * A @ B`` (Keras's formula).

    ``alpha=None`` means ``alpha = r`` (scale 1), Keras's default for ``enable_lora(r)``.

    Example:
        >>> merged_kernel(np.zeros((2, 2)), [[1.0], [0.0]], [[0.0, 3.0]], alpha=2.0)
        array([[0., 6.],
               [0., 0.]])
    """
    (A,), (B,) = _factors([A], [B])
    kernel = _matrix("kernel", kernel)
    if kernel.shape != (A.shape[0], B.shape[1]):
        raise ValueError(f"kernel must have shape {(A.shape[0], B.shape[1])}, got {kernel.shape}")
    rank = A.shape[1]
    scale = 1.0 if alpha is None else check_float("alpha", alpha) / rank
    return kernel + scale * (A @ B)


def average_of_products(
    As: Sequence[ArrayLike], Bs: Sequence[ArrayLike], weights: ArrayLike | None = None
) -> np.ndarray:
    """The exact FedAvg target ``sum_k p_k A_k @ B_k``: the average of the clients' updates.

    ``weights`` (e.g. the clients' example counts) are normalised to ``p_k``; ``None`` is
    uniform. Clients may have different ranks.

    Example:
        >>> average_of_products([[[1.0]], [[3.0]]], [[[1.0]], [[3.0]]])  # (1*1 + 3*3) / 2
        array([[5.]])
    """
    As, Bs = _factors(As, Bs)
    p = _weights(weights, len(As))
    return sum(p_k * (a @ b) for p_k, a, b in zip(p, As, Bs, strict=True))


def pad_factors(A: ArrayLike, B: ArrayLike, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad ``A`` with columns and ``B`` with rows up to ``rank``; ``A @ B`` is unchanged.

    This is how clients with different ranks are usually averaged (padding to the largest
    rank). Averaging padded factors is still :func:`product_of_averages`, with the same bias.

    Example:
        >>> A, B = pad_factors([[1.0], [2.0]], [[3.0, 4.0]], rank=2)
        >>> A.shape, B.shape
        ((2, 2), (2, 2))
    """
    (A,), (B,) = _factors([A], [B])
    rank = check_int("rank", rank, low=A.shape[1])
    extra = rank - A.shape[1]
    return np.pad(A, ((0, 0), (0, extra))), np.pad(B, ((0, extra), (0, 0)))


def product_of_averages(
    As: Sequence[ArrayLike], Bs: Sequence[ArrayLike], weights: ArrayLike | None = None
) -> np.ndarray:
    """What naive "FedAvg the factors" gives: ``(sum_k p_k A_k) @ (sum_k p_k B_k)``.

    Clients of lower rank are zero-padded to the largest rank (:func:`pad_factors`). It equals
    :func:`average_of_products` only in special cases (see the module docstring).

    Example:
        >>> product_of_averages([[[1.0]], [[3.0]]], [[[1.0]], [[3.0]]])  # 2 * 2, not 5
        array([[4.]])
    """
    As, Bs = _factors(As, Bs)
    p = _weights(weights, len(As))
    rank = max(a.shape[1] for a in As)
    padded = [pad_factors(a, b, rank) for a, b in zip(As, Bs, strict=True)]
    A_bar = sum(p_k * a for p_k, (a, _) in zip(p, padded, strict=True))
    B_bar = sum(p_k * b for p_k, (_, b) in zip(p, padded, strict=True))
    return A_bar @ B_bar


def aggregation_error(
    As: Sequence[ArrayLike], Bs: Sequence[ArrayLike], weights: ArrayLike | None = None
) -> float:
    """Relative Frobenius error of naive factor averaging: ``||exact - naive|| / ||exact||``.

    ``exact`` is :func:`average_of_products`, ``naive`` :func:`product_of_averages`. When the
    exact average is the zero matrix the error is 0 if the naive one is zero too, else ``inf``.

    Example:
        >>> aggregation_error([[[1.0]], [[3.0]]], [[[1.0]], [[3.0]]])  # |5 - 4| / 5
        0.2
    """
    exact = average_of_products(As, Bs, weights)
    gap = float(np.linalg.norm(exact - product_of_averages(As, Bs, weights)))
    size = float(np.linalg.norm(exact))
    if size == 0.0:
        return 0.0 if gap == 0.0 else float("inf")
    return gap / size


# ---------------------------------------------------------------------------------------------
# Exact alternatives


def aggregate_frozen_a(
    A: ArrayLike, Bs: Sequence[ArrayLike], weights: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact aggregation when every client shares one frozen ``A`` and trains only ``B``.

    ``sum_k p_k A B_k = A (sum_k p_k B_k)``, so averaging ``B`` is exact and the server returns
    ``(A, Bbar)``. This is FFA-LoRA (Sun et al. 2024): ``A`` is a fixed random matrix every
    client makes from a shared seed (in Keras, set ``layer.lora_kernel_a.trainable = False``
    after seeding). Trade-offs: only ``B`` is trained and uploaded (``r · d_out`` of LoRA's
    ``r · (d_in + d_out)`` numbers: half for a square layer, less where ``d_in`` is larger, as
    for Keras's attention kernels) and no server work, but each update lies in the fixed column space of ``A``, so for the same rank it can
    fit less than training both factors (a larger ``r`` makes up for it).

    Example:
        >>> A, B = aggregate_frozen_a([[1.0], [2.0]], [[[1.0, 0.0]], [[3.0, 2.0]]])
        >>> B
        array([[2., 1.]])
    """
    A = _matrix("A", A)
    As, Bs = _factors([A] * len(Bs), Bs)
    p = _weights(weights, len(Bs))
    return A, sum(p_k * b for p_k, b in zip(p, Bs, strict=True))


def aggregate_svd(
    As: Sequence[ArrayLike],
    Bs: Sequence[ArrayLike],
    rank: int,
    weights: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Average the products exactly, then re-factorise to ``rank`` with a truncated SVD.

    With ``M = sum_k p_k A_k B_k = U S V^T``, returns ``A = U_r sqrt(S_r)`` and ``B = sqrt(S_r)
    V_r^T``. ``A @ B`` is the best rank-``rank`` approximation of ``M`` (Eckart–Young): its
    Frobenius error is ``sqrt(sum of the discarded sigma_i^2)``, and it is exact when ``rank``
    is at least the rank of ``M`` (at most the sum of the clients' ranks). Clients may have
    different ranks. Trade-offs: the server builds the full ``d_in x d_out`` matrix and
    decomposes it (cheap per layer, but not free); keeping rank ``r`` discards information
    every round, while keeping a higher rank costs download and client memory; and the new
    factors are not the clients' old ones, so their optimiser state no longer matches. If the
    rank changes, keep Keras's scale ``alpha / rank`` in mind when loading the factors.

    Example:
        >>> A, B = aggregate_svd([[[1.0], [0.0]], [[0.0], [1.0]]], [[[2.0, 0.0]], [[0.0, 4.0]]], rank=2)
        >>> np.round(A @ B, 12)  # exactly the average of the products
        array([[1., 0.],
               [0., 2.]])
    """
    M = average_of_products(As, Bs, weights)
    rank = check_int("rank", rank, low=1, high=min(M.shape))
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    root = np.sqrt(S[:rank])
    return U[:, :rank] * root, root[:, None] * Vt[:rank]


# ---------------------------------------------------------------------------------------------
# A two-client example, its plot and a panel


@dataclass(frozen=True)
class LoraExample:
    """Two clients' LoRA factors and what each aggregation makes of them.

    Attributes:
        As: the clients' ``A_k``, each ``[d_in, rank]``.
        Bs: the clients' ``B_k``, each ``[rank, d_out]``.
        products: the clients' updates ``A_k @ B_k``.
        average_of_products: the exact FedAvg target.
        product_of_averages: what averaging the factors gives.
        difference: ``average_of_products - product_of_averages``
            (``= 1/4 (A_1 - A_2)(B_1 - B_2)``).
        error: the relative Frobenius error, as :func:`aggregation_error`.
    """

    As: tuple[np.ndarray, ...]
    Bs: tuple[np.ndarray, ...]
    products: tuple[np.ndarray, ...]
    average_of_products: np.ndarray
    product_of_averages: np.ndarray
    difference: np.ndarray
    error: float


def two_client_example(
    seed: int = 0, d_in: int = 4, d_out: int = 4, rank: int = 1, spread: float = 1.0
) -> LoraExample:
    """Two clients with equal weights whose factors are a shared start plus ``spread`` x noise.

    ``spread=0`` gives identical clients (no error); larger values make the clients'
    factors, and so the cross term, differ more.

    Example:
        >>> example = two_client_example(seed=0)
        >>> example.average_of_products.shape, example.error > 0
        ((4, 4), True)
        >>> two_client_example(spread=0.0).error
        0.0
    """
    seed = check_int("seed", seed, low=0)
    d_in = check_int("d_in", d_in, low=1)
    d_out = check_int("d_out", d_out, low=1)
    rank = check_int("rank", rank, low=1)
    spread = check_float("spread", spread, low=0.0)
    rng = np.random.default_rng(seed)
    A0, B0 = rng.normal(size=(d_in, rank)), rng.normal(size=(rank, d_out))
    As = tuple(A0 + spread * rng.normal(size=A0.shape) for _ in range(2))
    Bs = tuple(B0 + spread * rng.normal(size=B0.shape) for _ in range(2))
    exact = average_of_products(As, Bs)
    naive = product_of_averages(As, Bs)
    return LoraExample(
        As=As,
        Bs=Bs,
        products=tuple(a @ b for a, b in zip(As, Bs, strict=True)),
        average_of_products=exact,
        product_of_averages=naive,
        difference=exact - naive,
        error=aggregation_error(As, Bs),
    )


_PANELS = (
    ("client 1: A₁B₁", "product_1"),
    ("client 2: A₂B₂", "product_2"),
    ("average of products\n(exact)", "average_of_products"),
    ("product of averages\n(naive)", "product_of_averages"),
    ("difference", "difference"),
)


def plot_lora_aggregation(example: LoraExample, axes: Sequence[Axes] | None = None) -> Drawn:
    """Heatmaps of both clients' updates, the two aggregates and their difference (5 axes).

    All five share one colour scale centred on zero, so the difference is shown to scale.

    Example:
        >>> drawn = plot_lora_aggregation(two_client_example())  # doctest: +SKIP
    """
    if not isinstance(example, LoraExample):
        raise TypeError(f"example must be a LoraExample, got {type(example).__name__}")
    fig, axes = _axes(axes, ncols=len(_PANELS), width=2.3)
    data = {
        "product_1": example.products[0],
        "product_2": example.products[1],
        "average_of_products": example.average_of_products,
        "product_of_averages": example.product_of_averages,
        "difference": example.difference,
    }
    limit = max(float(np.abs(m).max()) for m in data.values()) or 1.0
    for ax, (title, name) in zip(axes, _PANELS, strict=True):
        image = ax.imshow(data[name], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(title, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    return Drawn(fig, tuple(axes), data)


class LoraAggregationPanel:
    """A live panel: change the rank, how different two clients are, or the seed; see the gap.

    Each change makes a new :func:`two_client_example`, prints its aggregation error and
    redraws :func:`plot_lora_aggregation` into one figure that pyplot never sees (shown as a
    PNG), so moving sliders leaves no figures behind. Displayed in a notebook it also leaves that
    PNG in the cell's output, for viewers without a kernel (GitHub, nbviewer).

    Attributes:
        controls: ``"rank"``, ``"spread"`` and ``"seed"`` widgets; set ``.value`` to drive it.
        status: the HTML line with the error.
        image: the PNG of the heatmaps.
        widget: the whole panel (an ``ipywidgets.VBox``).

    Example:
        >>> panel = LoraAggregationPanel(spread=0.0)
        >>> panel.example.error
        0.0
        >>> panel.controls["spread"].value = 1.0
        >>> panel.example.error > 0
        True
    """

    def __init__(
        self, rank: int = 1, spread: float = 1.0, seed: int = 0, d_in: int = 6, d_out: int = 6
    ):
        self._d_in = check_int("d_in", d_in, low=1, high=32)
        self._d_out = check_int("d_out", d_out, low=1, high=32)
        high = min(d_in, d_out)
        style = {"description_width": "initial"}
        self.controls: dict[str, widgets.ValueWidget] = {
            "rank": widgets.IntSlider(
                value=check_int("rank", rank, low=1, high=high),
                min=1,
                max=high,
                description="rank r",
                continuous_update=False,
                style=style,
            ),
            "spread": widgets.FloatSlider(
                value=check_float("spread", spread, low=0.0, high=3.0),
                min=0.0,
                max=3.0,
                step=0.1,
                description="how different the clients are",
                continuous_update=False,
                style=style,
            ),
            "seed": widgets.IntText(
                value=check_int("seed", seed, low=0),
                description="seed",
                layout=widgets.Layout(width="150px"),
            ),
        }
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.widget = widgets.VBox(
            [widgets.HBox(list(self.controls.values())), self.status, self.image]
        )
        self._figure = Figure(figsize=(12.0, 2.9), layout="constrained")
        FigureCanvasAgg(self._figure)  # draws to PNG without pyplot: no figure to leak
        for control in self.controls.values():
            control.observe(self._update, names="value")
        self._update()

    @property
    def example(self) -> LoraExample:
        """The example on screen."""
        return self._example

    def _update(self, change: Any = None) -> None:
        """Make the example the controls ask for, print its error and redraw."""
        self._example = two_client_example(
            seed=max(0, int(self.controls["seed"].value)),
            d_in=self._d_in,
            d_out=self._d_out,
            rank=self.controls["rank"].value,
            spread=self.controls["spread"].value,
        )
        self.status.value = html.escape(
            f"relative error of averaging the factors: "
            f"‖avg of products − product of avgs‖ / ‖avg of products‖ = {self._example.error:.3f}"
        )
        fig = self._figure
        fig.clear()
        plot_lora_aggregation(self._example, axes=fig.subplots(1, len(_PANELS)))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        self.image.value = buffer.getvalue()

    def __repr__(self) -> str:
        """The example on screen, e.g. ``LoraAggregationPanel(rank 1, spread 1, seed 0: ...)``."""
        c = self.controls
        return (
            f"LoraAggregationPanel(rank {c['rank'].value}, spread {c['spread'].value:g}, "
            f"seed {c['seed'].value}: relative error {self._example.error:.3f})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """The panel for live front ends, plus the heatmaps as a PNG for static viewers."""
        return panel_bundle(self.widget, self.image.value, repr(self))


__all__ = [
    "LoraAggregationPanel",
    "LoraExample",
    "aggregate_frozen_a",
    "aggregate_svd",
    "aggregation_error",
    "average_of_products",
    "merged_kernel",
    "pad_factors",
    "plot_lora_aggregation",
    "product_of_averages",
    "two_client_example",
]
