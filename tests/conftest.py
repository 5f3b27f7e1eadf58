import pytest
import torch

EPS64 = torch.finfo(torch.float64).eps


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
