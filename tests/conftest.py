import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Small, deterministic property-test budgets keep the suite fast on 2 cores; PYDL_HYPOTHESIS=thorough
# runs many more examples.
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("PYDL_HYPOTHESIS", "ci"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_sessionstart(session):
    """With PYDL_TEST_INSTALLED=1 (.ci/run's wheel test) refuse to run against the source tree
    instead of the installed package."""
    import pydl

    where = os.path.dirname(os.path.abspath(pydl.__file__))
    if os.environ.get("PYDL_TEST_INSTALLED") == "1" and \
            os.path.commonpath([where, ROOT]) == ROOT:
        raise pytest.UsageError(f"PYDL_TEST_INSTALLED=1 but pydl was imported from the source "
                                f"tree ({where}), not from the installed package")


def pytest_report_header(config):
    import pydl

    where = os.path.dirname(os.path.abspath(pydl.__file__))
    return f"pydl {pydl.__version__} from {where} ({pydl._C.compiler}, simd {pydl._C.simd_path()})"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_pydl():
    import pydl

    pydl.manual_seed(0)
    yield
