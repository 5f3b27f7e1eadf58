"""fit refuses a bad configuration up front: one ConfigError naming the value and the rule, no work done."""

import math
import re

import pytest
import torch

from dynnets.errors import ConfigError, DynnetsError
from dynnets.train import Monitor, Phase, Stall, choose, fit, shard_loader
from dynnets.train.phase import check_phase


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1)


def _loss(model, batch):
    return model(torch.ones(2, 3, dtype=model.weight.dtype)).pow(2).mean()


def _once():
    return iter([1, 2, 3])


CASES = [
    # (keyword arguments, words the message must contain)
    (dict(optimizer="adamw"), ["optimizer='adamw'", "'adam'", "'lbfgs'"]),
    (dict(optimizer=3), ["optimizer=3"]),
    (dict(lr=0.0), ["lr must be positive and finite, got lr=0.0"]),
    (dict(lr=-1e-3), ["lr must be positive and finite, got lr=-0.001"]),
    (dict(lr=math.nan), ["lr must be finite, got lr=nan"]),
    (dict(lr=math.inf), ["lr must be finite, got lr=inf"]),
    (dict(lr="big"), ["lr must be a real number, got 'big'"]),
    (dict(steps=0), ["steps must be a positive integer, got 0"]),
    (dict(steps=-5), ["steps must be a positive integer, got -5"]),
    (dict(steps=2.5), ["steps must be a positive integer, got 2.5"]),
    (dict(steps=True), ["steps must be a positive integer, got True"]),
    (dict(device="gpu"), ["device='gpu'", "'cpu'"]),
    (dict(device="tpu:0"), ["device='tpu:0'"]),
    (dict(device=7), ["device=7"]),
    (dict(dtype="int32"), ["dtype='int32'", "floating-point"]),
    (dict(dtype=torch.int64), ["dtype=torch.int64", "floating-point"]),
    (dict(dtype="float128"), ["dtype='float128'"]),
    (dict(checkpoint_every=0), ["checkpoint_every must be a positive integer, got 0"]),
    (dict(clip_grad_norm=1.0), ["unknown option(s) ['clip_grad_norm']"]),
    (dict(time_budget=0), ["time_budget must be positive and finite, got time_budget=0.0"]),
    (dict(seed=-1), ["seed must be an integer >= 0", "got -1"]),
    (dict(seed=1.5), ["seed must be an integer", "got 1.5"]),
    (dict(resume="yes"), ["resume must be True or False, got 'yes'"]),
    (dict(phases=[Phase("lbfgs", 3, options={"max_iters": 5})]), ["max_iters", "unknown"]),
    (dict(phases=[Phase("lbfgs", 3, options={"line_search_fn": "armijo"})]), ["'armijo'", "strong_wolfe"]),
    (dict(phases=[Phase("adam", 3, options={"momentum": 0.9})]), ["momentum", "unknown", "'adam'"]),
    (dict(schedule=5), ["schedule"]),
    (dict(schedule=lambda opt: "not a scheduler"), ["LRScheduler"]),
    (dict(checkpoint=12), ["checkpoint=12", "file path"]),
    (dict(desc=3), ["desc=3"]),
    (dict(on_step="print"), ["on_step"]),
]


@pytest.mark.parametrize("kwargs, words", CASES, ids=[re.sub(r" at 0x[0-9a-f]+", "", repr(c[0]))[:60] for c in CASES])
def test_bad_option_is_refused_before_any_work(kwargs, words, tmp_path):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def loss(m, b):
        calls.append(1)
        return _loss(m, b)

    options = dict(steps=3, progress=False, checkpoint=tmp_path / "run.ckpt")
    options.update(kwargs)
    if "phases" in kwargs:
        del options["steps"]
    with pytest.raises(ConfigError) as info:
        fit(model, loss, **options)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert "\n" not in message
    # nothing happened: loss never evaluated, model untouched (not even converted), no file written
    assert calls == []
    assert all(torch.equal(before[k], v) and v.dtype == before[k].dtype for k, v in model.state_dict().items())
    assert not (tmp_path / "run.ckpt").exists()


@pytest.mark.parametrize("call, rule", [
    (lambda: Monitor(len, every_seconds=0), "Monitor every_seconds must be positive and finite, got every_seconds=0.0"),
    (lambda: Monitor(len, every_steps=0), "Monitor every_steps must be a positive integer, got 0"),
    (lambda: fit(_model(), _loss, phases=[Phase(stall=Stall(rtol=1))]), "stall rtol must be < 1, got rtol=1.0"),
    (lambda: fit(_model(), _loss, phases=[Phase(stall=Stall(rtol=-0.1))]), "stall rtol must be >= 0, got rtol=-0.1"),
    (lambda: fit(_model(), _loss, phases=[Phase(stall=Stall(every=0))]), "stall every must be a positive integer"),
    (lambda: choose([1.0], float, limit=math.nan), "limit must be a number, not NaN, got limit=nan"),
    (lambda: shard_loader([1.0, 2.0], global_batch_size=0), "global_batch_size must be a positive integer, got 0"),
], ids=["every_seconds", "every_steps", "rtol-1", "rtol-negative", "stall-every", "limit-nan", "global_batch_size"])
def test_bad_helper_arguments_are_refused(call, rule):
    with pytest.raises(ConfigError, match=re.escape(rule)):
        call()
    # the edges of the same rules are accepted: an infinite limit is no limit, rtol = 0 is a strict decrease
    assert choose([1.0, 3.0], float, limit=math.inf).index == 0
    assert check_phase(Phase(stall=Stall(rtol=0.0))).stall.rtol == 0.0
    assert Monitor(len, every_seconds=1e-3, every_steps=1).every_steps == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_cuda_without_cuda_is_refused(device):
    with pytest.raises(ConfigError, match="CUDA is not available"):
        fit(_model(), _loss, steps=1, device=device, progress=False)


def test_cuda_index_past_device_count_is_refused():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    with pytest.raises(ConfigError, match="does not exist"):
        fit(_model(), _loss, steps=1, device=f"cuda:{torch.cuda.device_count()}", progress=False)


def test_one_shot_iterator_and_non_iterable_data_are_refused():
    with pytest.raises(ConfigError, match="one-shot iterator"):
        fit(_model(), _loss, _once(), steps=1, progress=False)
    with pytest.raises(ConfigError, match="data must be None, an iterable"):
        fit(_model(), _loss, 3.0, steps=1, progress=False)


def test_model_and_loss_fn_are_checked():
    frozen = _model().requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        fit(frozen, _loss, steps=1, progress=False)
    with pytest.raises(ConfigError, match="model must be a torch.nn.Module"):
        fit(lambda x: x, _loss, steps=1, progress=False)
    with pytest.raises(ConfigError, match="loss_fn must be callable"):
        fit(_model(), 3, steps=1, progress=False)


def test_checkpoint_that_is_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        fit(_model(), _loss, steps=1, checkpoint=tmp_path, progress=False)


def test_config_error_is_a_dynnets_and_value_error():
    with pytest.raises(DynnetsError):
        fit(_model(), _loss, steps=0)
    with pytest.raises(ValueError):
        fit(_model(), _loss, steps=0)


def test_good_spellings_are_accepted():
    for dtype in ("float64", "double", torch.float64, "torch.float64"):
        model = _model()
        fit(model, _loss, steps=1, dtype=dtype, device=torch.device("cpu"), progress=False)
        assert model.weight.dtype == torch.float64
    fit(_model(), _loss, steps=1, optimizer="SGD", lr=1, progress=False)
    fit(_model(), _loss, steps=1, optimizer="RMSprop", lr=1e-3, progress=False)
