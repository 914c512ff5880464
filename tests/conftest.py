"""Shared test settings: float tolerances from the issue and a modest hypothesis profile."""

import os

import numpy as np
import pytest
import torch
from hypothesis import settings

# Equivalence with PyTorch: 1e-5 in float32, 1e-10 where both sides are float64.
ATOL32 = 1e-5
ATOL64 = 1e-10

settings.register_profile("course", max_examples=40, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))


@pytest.fixture
def gen():
    """A seeded torch generator, fresh for every test."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def rng():
    """A seeded numpy generator, fresh for every test."""
    return np.random.default_rng(0)
