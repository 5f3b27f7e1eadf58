import pytest
import torch

EPS64 = torch.finfo(torch.float64).eps


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test with one intra-op thread, restored afterwards. The tests evaluate small tensors many
    times; on a 2-core machine shared with anything else, thread hand-offs cost 10-50x the arithmetic
    (measured while developing). Tests that start processes set OMP_NUM_THREADS for them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
