"""The shared experiment runner: validation before any work, seeds, skipping finished runs, refusing to
replace other runs, median/worst over seeds, non-finite results as errors, settings restored."""

import json
import math

import pytest
import torch

from dynnets.applications.runner import Runner, check_rollout, parse_seeds, run_cli
from dynnets.errors import ConfigError, DivergenceError


def toy(headline=None, **options):
    runner = Runner("toy", "a toy experiment", headline=headline or {"error": "min", "score.acc": "max"},
                    **options)
    runner.parser.add_argument("--scale", type=float, default=1.0)
    calls = []

    def run_seed(args, seed, out):
        calls.append(seed)
        out.mkdir(parents=True, exist_ok=True)
        (out / "figure.png").write_bytes(b"png")
        return {"error": args.scale * (seed + 1), "score": {"acc": 1.0 / (seed + 1)},
                "threads_inside": torch.get_num_threads()}

    return runner, run_seed, calls


def test_parse_seeds():
    assert parse_seeds("3") == [3]
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    for bad in ("4-1", "a", "-3", "1,1", str(2**64)):
        with pytest.raises(ConfigError, match="seed"):
            parse_seeds(bad)


def test_one_seed_writes_metrics_with_settings_and_restores_threads(tmp_path):
    runner, run_seed, calls = toy()
    before = torch.get_num_threads()
    m = runner.main(run_seed, ["--out", str(tmp_path), "--seed", "2", "--threads", "1", "--scale", "3"])
    assert torch.get_num_threads() == before and m["threads_inside"] == 1
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["error"] == 9.0 and stored["seed"] == 2 and stored["settings"]["scale"] == 3.0
    assert calls == [2]


def test_rerun_skips_identical_refuses_other_settings_and_overwrite_replaces(tmp_path):
    runner, run_seed, calls = toy()
    args = ["--out", str(tmp_path), "--scale", "2"]
    runner.main(run_seed, args)
    runner.main(run_seed, args)
    assert calls == [0]  # the finished seed was not rerun
    with pytest.raises(ConfigError, match=r"--scale=2\.0 there, 5\.0 here.*--overwrite"):
        runner.main(run_seed, ["--out", str(tmp_path), "--scale", "5"])
    with pytest.raises(ConfigError, match="seed 0 there, 1 here"):
        runner.main(run_seed, ["--out", str(tmp_path), "--scale", "2", "--seed", "1"])
    assert calls == [0]  # refused before any work
    runner.main(run_seed, ["--out", str(tmp_path), "--scale", "5", "--overwrite"])
    assert calls == [0, 0] and json.loads((tmp_path / "metrics.json").read_text())["error"] == 5.0


def test_seeds_give_rows_median_and_worst_and_resume(tmp_path):
    runner, run_seed, calls = toy()
    summary = runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-4"])
    assert summary["seeds"] == [0, 1, 2, 3, 4]
    assert summary["median"]["error"] == 3.0 and summary["worst"]["error"] == 5.0
    assert summary["worst_seed"]["error"] == 4 and summary["worst"]["score.acc"] == pytest.approx(0.2)
    assert (tmp_path / "seed_3" / "metrics.json").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["per_seed"]["2"]["error"] == 3.0
    runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-6"])
    assert calls == [0, 1, 2, 3, 4, 5, 6]  # seeds 0-4 were finished: only 5 and 6 ran


@pytest.mark.parametrize("value", [math.nan, math.inf, None])
def test_non_finite_headline_is_an_error_not_a_table_entry(tmp_path, value):
    runner = Runner("toy", headline={"error": "min"})
    with pytest.raises(DivergenceError, match="seed 0: toy's error is"):
        runner.main(lambda args, seed, out: {"error": value}, ["--out", str(tmp_path)])
    assert not (tmp_path / "metrics.json").exists()


def test_bad_options_are_refused_before_any_work(tmp_path, capsys):
    runner, run_seed, calls = toy(dtypes=("float64",), devices=("cpu",))
    afile = tmp_path / "file"
    afile.write_text("x")
    cases = [(["--dtype", "float32"], "--dtype float32 is not supported"),
             (["--device", "cuda"], "cuda" if not torch.cuda.is_available() else "runs on cpu only"),
             (["--device", "bogus"], "not a device name"),
             (["--threads", "0"], "--threads"),
             (["--seed", "-1"], "--seed"),
             (["--out", str(afile)], "is a file"),
             (["--out", str(afile / "sub")], "cannot be created")]
    for argv, message in cases:
        with pytest.raises(SystemExit) as info:
            run_cli(lambda a: runner.main(run_seed, a), argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert calls == []


def test_check_rollout_names_seed_and_step():
    check_rollout(torch.tensor([1.0, 0.5, 0.2]), "error", seed=1)
    with pytest.raises(DivergenceError, match="seed 3: rollout diverged at step 2"):
        check_rollout(torch.tensor([[1.0], [2.0], [math.nan]]), "rollout", seed=3)
    with pytest.raises(DivergenceError, match="at step 1 .*10 x step 0"):
        check_rollout([1.0, 11.0, 1.0], "norm", grow=10.0)


def test_benchmark_kind_always_reruns_into_name_json(tmp_path):
    runner = Runner("bench", kind="benchmark")
    calls = []
    for _ in range(2):
        runner.main(lambda args, seed, out: calls.append(seed) or {"ratio": 1.5}, ["--out", str(tmp_path)])
    assert calls == [0, 0] and json.loads((tmp_path / "bench.json").read_text()) == {"ratio": 1.5}
