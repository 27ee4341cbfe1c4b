"""The split explorer panel: its controls re-make the split with fedlab.partition and redraw it."""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fedlab import partition  # noqa: E402
from fedlab.ui.split_explorer import PARAMETER_OF, SCHEMES, SplitExplorer  # noqa: E402

LABELS = np.repeat(np.arange(10), 20)  # 200 examples, 20 of each class


def shown(explorer, name):
    return explorer.controls[name].layout.display != "none"


def test_changing_controls_remakes_the_split():
    explorer = SplitExplorer(LABELS, scheme="iid", num_clients=5)
    assert explorer.split == partition.iid(LABELS, 5, seed=0)
    explorer.controls["scheme"].value = "shards"
    explorer.controls["num_clients"].value = 8
    explorer.controls["shards_per_client"].value = 3
    assert explorer.split.scheme == "shards(3/client)"
    assert explorer.split == partition.shards(LABELS, 8, shards_per_client=3, seed=0)
    explorer.controls["seed"].value = 4
    assert explorer.split == partition.shards(LABELS, 8, shards_per_client=3, seed=4)


def test_log_slider_values_are_rounded_for_the_partitioner():
    explorer = SplitExplorer(LABELS, scheme="dirichlet", num_clients=4)
    explorer.controls["alpha"].value = 10**0.3  # where the log slider lands for "2"
    assert explorer.split == partition.dirichlet(LABELS, 4, alpha=2.0, seed=0)


def test_every_change_redraws_the_image():
    explorer = SplitExplorer(LABELS, scheme="iid", num_clients=5)
    before = bytes(explorer.image.value)
    assert before.startswith(b"\x89PNG")
    explorer.controls["scheme"].value = "label_limit"
    after_scheme = bytes(explorer.image.value)
    explorer.controls["kind"].value = "heatmap"
    assert len({before, after_scheme, bytes(explorer.image.value)}) == 3


def test_status_line_shows_the_splits_own_numbers():
    explorer = SplitExplorer(LABELS, scheme="quantity_skew", sigma=1.5, num_clients=6)
    split = explorer.split
    text = re.sub(r"<[^>]+>", "", explorer.status.value)
    match = re.fullmatch(
        r"heterogeneity H = (\S+) · mean label entropy (\S+) bits · sizes (\d+)–(\d+)", text
    )
    assert match, text
    assert match[1] == f"{split.heterogeneity():.2f}"
    assert match[2] == f"{split.label_entropy().mean():.2f}"
    assert (int(match[3]), int(match[4])) == (split.sizes.min(), split.sizes.max())


def test_only_the_current_schemes_slider_is_shown(digits):
    explorer = SplitExplorer(digits, scheme="iid")
    assert list(explorer.controls["scheme"].options) == list(SCHEMES)
    for scheme in SCHEMES:
        explorer.controls["scheme"].value = scheme
        assert explorer.error is None
        visible = [name for name in filter(None, PARAMETER_OF.values()) if shown(explorer, name)]
        assert visible == ([PARAMETER_OF[scheme]] if PARAMETER_OF[scheme] else [])
    assert shown(explorer, "num_clients") and shown(explorer, "seed")


def test_feature_skew_needs_images(digits):
    explorer = SplitExplorer(digits, scheme="feature_skew", max_rotation=30.0, num_clients=5)
    assert explorer.split.scheme == "feature_skew(±30°)"
    assert "feature_skew" not in SplitExplorer(LABELS).controls["scheme"].options
    with pytest.raises(ValueError, match="scheme must be one of"):
        SplitExplorer(LABELS, scheme="feature_skew")


def test_a_bad_combination_shows_the_message_and_keeps_the_last_split():
    explorer = SplitExplorer(LABELS, scheme="label_limit", classes_per_client=3, num_clients=10)
    good = explorer.split
    image = bytes(explorer.image.value)
    explorer.controls["num_clients"].value = 100  # 30 clients would share each class's 20 examples
    with pytest.raises(ValueError) as expected:
        partition.label_limit(LABELS, 100, classes_per_client=3, seed=0)
    assert explorer.error == str(expected.value)
    assert str(expected.value) in explorer.status.value
    assert "color" in explorer.status.value and "Traceback" not in explorer.status.value
    assert explorer.split == good and bytes(explorer.image.value) == image
    explorer.controls["num_clients"].value = 20
    assert explorer.error is None and explorer.split.num_clients == 20
    assert explorer.status.value.startswith("heterogeneity")


@settings(max_examples=6, deadline=None)
@given(
    scheme=st.sampled_from([s for s in SCHEMES if s != "feature_skew"]),
    num_clients=st.integers(2, 100),
    seed=st.integers(0, 3),
)
def test_the_panel_shows_what_partition_gives_or_its_error(scheme, num_clients, seed):
    explorer = SplitExplorer(LABELS, scheme="iid", kind="heatmap")  # a heatmap draws fastest
    explorer.controls["seed"].value = seed
    explorer.controls["num_clients"].value = num_clients
    explorer.controls["scheme"].value = scheme
    name = PARAMETER_OF[scheme]
    extra = {name: explorer.controls[name].value} if name else {}
    try:
        expected = partition.PARTITIONERS[scheme](LABELS, num_clients, seed=seed, **extra)
    except ValueError as error:
        assert explorer.error == str(error)
    else:
        assert explorer.error is None and explorer.split == expected


def test_min_size_is_passed_to_dirichlet(digits):
    explorer = SplitExplorer(digits, scheme="dirichlet", alpha=0.3, num_clients=50)
    assert explorer.split.sizes.min() >= 10
    explorer.controls["num_clients"].value = 100
    assert "min_size=10" in explorer.error
    relaxed = SplitExplorer(digits, scheme="dirichlet", alpha=0.3, num_clients=100, min_size=2)
    assert relaxed.split == partition.dirichlet(digits.y_train, 100, alpha=0.3, min_size=2)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"scheme": "random"}, "scheme must be one of"),
        ({"alpha": 1000.0}, "alpha must be"),
        ({"num_clients": 1}, "num_clients must be"),
        ({"classes_per_client": 11}, "classes_per_client must be"),
        ({"kind": "pie"}, "kind must be one of"),
        ({"scheme": "label_limit", "num_clients": 100, "classes_per_client": 10}, "label_limit"),
    ],
)
def test_bad_starting_values_raise(values, message):
    with pytest.raises(ValueError, match=message):
        SplitExplorer(LABELS, **values)


def test_redrawing_leaks_no_figures_and_no_axes():
    before = plt.get_fignums()
    explorer = SplitExplorer(LABELS, scheme="mixed", kind="heatmap")
    for kind in ("bars", "heatmap", "bars", "heatmap"):
        explorer.controls["kind"].value = kind
    explorer.controls["normalize"].value = True
    assert plt.get_fignums() == before
    assert len(explorer._figure.axes) == 3  # labels, their colorbar, sizes: nothing piles up


def test_a_notebook_keeps_a_png_of_the_split_on_screen(notebook_png):
    explorer = SplitExplorer(LABELS, scheme="dirichlet", alpha=0.5, num_clients=10)
    first, width, height = notebook_png(explorer)
    assert first == bytes(explorer.image.value)
    assert (width, height) == (900, 306)  # 10 x 3.4 inches at 90 dpi
    heterogeneity = explorer.split.heterogeneity()
    assert repr(explorer) == f"SplitExplorer(dirichlet(α=0.5), 10 clients, H = {heterogeneity:.2f})"
    explorer.controls["num_clients"].value = 4
    moved, _, _ = notebook_png(explorer)
    assert moved != first and moved == bytes(explorer.image.value)
    assert repr(explorer).startswith("SplitExplorer(dirichlet(α=0.5), 4 clients, H = ")
    explorer.controls["classes_per_client"].value = 3  # a hidden slider: same split, same picture
    assert notebook_png(explorer)[0] == moved
    explorer.controls["alpha"].value = 0.01
    explorer.controls["num_clients"].value = 40  # refused: some client gets < min_size examples
    assert notebook_png(explorer)[0] == bytes(explorer.image.value)
    assert "; refused: " in repr(explorer) and explorer.error in repr(explorer)
    assert (
        explorer.status in explorer.widget.children and explorer.image in explorer.widget.children
    )
