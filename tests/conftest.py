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


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_pydl():
    import pydl

    pydl.manual_seed(0)
    yield
