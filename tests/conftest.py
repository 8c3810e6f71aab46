"""Fixtures shared by the Python suites (tests/python, tests/serve)."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def cli():
    """The trocr CLI of the build (TROCR_CLI overrides); the test skips without one."""
    path = os.environ.get("TROCR_CLI", os.path.join(ROOT, "build", "src", "cli", "trocr"))
    if not os.access(path, os.X_OK):
        pytest.skip(f"no trocr CLI at {path} (set TROCR_CLI)")
    return path
