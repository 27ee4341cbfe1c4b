"""The other half of the student versions' runs (tests/test_exercises.py has the first half and
says what each run checks): a file of its own so that the two halves run on two workers."""

from __future__ import annotations

import pytest
from test_exercises import STUDENT_RUNS_THERE, check_student_version, versions

__all__ = ["versions"]  # the module fixture the test below uses (one build per notebook)


@pytest.mark.parametrize("name", STUDENT_RUNS_THERE)
def test_the_student_version_fails_each_check_on_its_stub(name, versions):  # noqa: F811
    check_student_version(name, versions)
