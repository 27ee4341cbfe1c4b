"""Checks of notebook 00's exercises (fedlab/exercises/overview.py): each wrong verdict and each
anticipated wrong number fails with its own message; the stubs fail."""

import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed

RIGHT = {name: verdict for name, (verdict, _) in exercises.SCENARIOS.items()}


def fails(check, *args, match):
    with pytest.raises(CheckFailed, match=match):
        check(*args)


def test_the_right_verdicts_pass(capsys):
    exercises.check_federated_or_not(RIGHT)
    assert "✓ all 5 scenarios" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name, message",
    [
        ("encrypted upload", "is not federated learning: the photos still leave the phones"),
        ("alone", "is not federated learning: nothing is shared"),
        ("trusted party", "is not federated learning: the data are pooled"),
        ("hospitals", "is federated learning: each hospital keeps its records"),
        ("keyboards", "is federated learning: each phone trains"),
    ],
)
def test_each_wrong_verdict_is_named_with_why(name, message):
    fails(exercises.check_federated_or_not, {**RIGHT, name: not RIGHT[name]}, match=message)


def test_stubs_and_malformed_verdicts_fail():
    fails(exercises.check_federated_or_not, ..., match="still `...`")
    stub = dict.fromkeys(RIGHT, ...)
    fails(exercises.check_federated_or_not, stub, match=r"\['hospitals'\] is still `...`")
    fails(exercises.check_federated_or_not, {"hospitals": True}, match="no verdict for")
    fails(exercises.check_federated_or_not, {**RIGHT, "alone": "no"}, match="True or False")
    fails(exercises.check_federated_or_not, [True], match="should be a dict")


def test_the_small_share_check_names_equal_weights_the_ratio_and_percentages(capsys):
    exercises.check_small_share(10 / 1010)
    assert "1.0 %" in capsys.readouterr().out
    fails(exercises.check_small_share, 0.5, match="equal weights")
    fails(exercises.check_small_share, 0.01, match="compares the two sizes")
    fails(exercises.check_small_share, 100 * 10 / 1010, match="percentage")
    fails(exercises.check_small_share, 0.2, match="not the small clients' share")
    fails(exercises.check_small_share, ..., match="still `...`")
    fails(exercises.check_small_share, "a lot", match="should be a number")
