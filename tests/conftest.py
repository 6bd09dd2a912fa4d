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


@pytest.fixture(autouse=True)
def _isolated_from_the_user_s_data(request, monkeypatch, tmp_path_factory):
    """Fast tests never see the user's data directory or cache, nor CI=true (a shell that exports
    them must not change what they test); slow tests use them on purpose."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.delenv("TRAINGUARD_DATA_DIR", raising=False)
        monkeypatch.delenv("CI", raising=False)  # strict mode only where a test asks for it
        monkeypatch.setenv("TRAINGUARD_CACHE_DIR", str(tmp_path_factory.mktemp("trainguard-cache")))
