"""Importing fedlab keeps TensorFlow quiet (log lines would break nbval and clutter notebooks)."""

import os
import subprocess
import sys

import fedlab


def test_import_prints_nothing_on_stderr():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    code = "import fedlab, tensorflow as tf; print(int(tf.constant(1) + 1))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    assert result.stderr == ""


def test_versions_names_the_libraries():
    versions = fedlab.versions()
    assert {"fedlab", "python", "tensorflow", "keras", "numpy"} <= set(versions)
    assert versions["keras"].startswith("3.")
