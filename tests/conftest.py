import numpy as np
import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def tiny_arrays():
    """A small data set in the keras layout, generated — never the network, never ../shared."""
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8),
        "y_train": np.tile(np.arange(10, dtype=np.uint8), 4),
        "x_test": rng.integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8),
        "y_test": np.tile(np.arange(10, dtype=np.uint8), 2),
    }
