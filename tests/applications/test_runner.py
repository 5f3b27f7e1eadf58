"""The shared experiment runner: validation before any work, seeds, skipping finished runs, refusing to
replace other runs, median/worst over seeds, non-finite results as errors, settings restored."""

import functools
import importlib
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dynnets.applications.runner import MAX_SEEDS, Runner, check_rollout, parse_seeds, run_cli
from dynnets.errors import ConfigError, DivergenceError
from dynnets.io import jsonable

ROOT = Path(__file__).resolve().parents[2]


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
             (["--seed", "-1"], "--seed must be an integer >= 0 (at most 18446744073709551615), got -1"),
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


# ---- issue 26: adding seeds to a directory merges, never replaces ------------------------------------------

def read(path):
    return json.loads(path.read_text())


def test_adding_seeds_to_a_single_seed_run_merges_and_moves_its_files(tmp_path):
    """--seed 0 then --seeds 1-2: seed 0 moves to seed_0/ (its metrics and the files it wrote, nothing
    else), is not rerun, and D/metrics.json summarises seeds 0, 1 and 2."""
    runner, run_seed, calls = toy()
    (tmp_path / "notes.txt").write_text("the user's own file")
    runner.main(run_seed, ["--out", str(tmp_path), "--seed", "0"])
    summary = runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "1-2"])
    assert calls == [0, 1, 2]
    assert read(tmp_path / "metrics.json") == json.loads(json.dumps(summary))
    assert summary["seeds"] == [0, 1, 2] and summary["median"]["error"] == 2.0
    assert summary["worst"]["error"] == 3.0 and summary["worst_seed"]["error"] == 2
    assert read(tmp_path / "seed_0" / "metrics.json")["error"] == 1.0
    assert (tmp_path / "seed_0" / "figure.png").is_file() and not (tmp_path / "figure.png").exists()
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"  # not the seed's: left in place


@pytest.mark.parametrize("first, second, seeds", [
    (["--seeds", "0-1"], ["--seeds", "2-3"], [0, 1, 2, 3]),
    (["--seeds", "0-1"], ["--seeds", "1-3"], [0, 1, 2, 3]),
    (["--seed", "0"], ["--seed", "1"], [0, 1]),
    (["--seeds", "0-1"], ["--seed", "5"], [0, 1, 5]),
    (["--seed", "3"], ["--seeds", "3"], [3]),
])
def test_one_rule_for_single_and_multi_seed_runs_into_one_directory(tmp_path, first, second, seeds):
    runner, run_seed, calls = toy()
    runner.main(run_seed, ["--out", str(tmp_path), *first])
    result = runner.main(run_seed, ["--out", str(tmp_path), *second])
    assert sorted(calls) == seeds  # every seed ran once
    stored = read(tmp_path / "metrics.json")
    assert stored == json.loads(json.dumps(result))
    if len(seeds) == 1:
        assert stored["seed"] == seeds[0] and not list(tmp_path.glob("seed_*"))
        return
    errors = [s + 1.0 for s in seeds]  # the toy's error of seed s
    assert stored["seeds"] == seeds and sorted(stored["per_seed"]) == sorted(map(str, seeds))
    assert stored["median"]["error"] == pytest.approx(statistics.median(errors))
    assert stored["worst"]["error"] == max(errors) and stored["worst_seed"]["error"] == seeds[-1]
    for s in seeds:
        assert read(tmp_path / f"seed_{s}" / "metrics.json")["seed"] == s
        assert (tmp_path / f"seed_{s}" / "figure.png").is_file()


def test_other_settings_are_refused_before_any_work_and_overwrite_replaces_them(tmp_path):
    runner, run_seed, calls = toy()
    runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-2", "--scale", "2"])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for argv in (["--seeds", "3-4"], ["--seed", "0"], ["--seed", "7"]):
        with pytest.raises(ConfigError, match=r"seed_\d/metrics.json holds results of another run "
                                              r"\(--scale=2\.0 there, 1\.0 here\)"):
            runner.main(run_seed, ["--out", str(tmp_path), *argv])
    assert calls == [0, 1, 2] and {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    summary = runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "3-4", "--overwrite"])
    assert calls == [0, 1, 2, 3, 4] and summary["seeds"] == [3, 4]
    assert not any((tmp_path / f"seed_{s}").exists() for s in (0, 1, 2))  # replaced, not mixed in


def test_an_interrupted_run_keeps_a_summary_of_its_finished_seeds_and_resumes(tmp_path):
    runner, run_seed, calls = toy()

    def failing(args, seed, out):
        if seed == 2:
            raise KeyboardInterrupt
        return run_seed(args, seed, out)

    with pytest.raises(KeyboardInterrupt):
        runner.main(failing, ["--out", str(tmp_path), "--seeds", "0-3"])
    assert read(tmp_path / "metrics.json")["seeds"] == [0, 1]
    assert runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-3"])["seeds"] == [0, 1, 2, 3]
    assert calls == [0, 1, 2, 3]


def test_a_single_seed_without_a_file_record_is_not_moved_silently(tmp_path):
    """metrics.json written before the runner recorded a seed's files: adding seeds cannot tell its files
    from the user's, so it refuses; --overwrite replaces that seed."""
    runner, run_seed, calls = toy()
    runner.main(run_seed, ["--out", str(tmp_path), "--seed", "0"])
    legacy = read(tmp_path / "metrics.json")
    legacy.pop("files")
    (tmp_path / "metrics.json").write_text(json.dumps(legacy))
    with pytest.raises(ConfigError, match="does not record the files .*--overwrite"):
        runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-1"])
    assert calls == [0]
    assert runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-1", "--overwrite"])["seeds"] == [0, 1]


def test_a_seed_without_a_headline_number_of_this_version_is_refused_before_any_work(tmp_path):
    """Seeds finished by an older version (same settings, one headline number fewer) cannot be summarised
    with the new one: refused before any work (a KeyError after the work before), --overwrite reruns them."""
    new, run_seed, calls = toy()
    old, _, _ = toy(headline={"error": "min"})
    old.main(lambda args, seed, out: {"error": 1.0 + seed}, ["--out", str(tmp_path), "--seeds", "0-1"])
    with pytest.raises(ConfigError, match=r"seed_0/metrics.json holds .*no 'score.acc'.*--overwrite"):
        new.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-2"])
    assert calls == []
    summary = new.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-2", "--overwrite"])
    assert calls == [0, 1, 2] and summary["worst"]["score.acc"] == pytest.approx(1 / 3)


def test_a_move_interrupted_halfway_completes_on_the_next_run(tmp_path):
    runner, run_seed, calls = toy()
    runner.main(run_seed, ["--out", str(tmp_path), "--seed", "0"])
    (tmp_path / "seed_0").mkdir()
    (tmp_path / "figure.png").rename(tmp_path / "seed_0" / "figure.png")  # renamed, then the process died
    assert runner.main(run_seed, ["--out", str(tmp_path), "--seeds", "0-1"])["seeds"] == [0, 1]
    assert calls == [0, 1] and (tmp_path / "seed_0" / "figure.png").read_bytes() == b"png"
    assert read(tmp_path / "seed_0" / "metrics.json")["seed"] == 0


@pytest.mark.slow
def test_eigen_quick_single_seed_then_more_seeds_merges(tmp_path):
    """The issue's sequence with the real experiment (--seeds 0-1 rather than 1-2: one run fewer, and it
    also shows the finished seed 0 is not rerun): seed 0's results survive unchanged in seed_0/, and
    D/metrics.json is the median and worst over seeds 0 and 1."""
    from experiments import eigen

    first = jsonable(eigen.main(["--quick", "--out", str(tmp_path), "--seed", "0"]))
    summary = jsonable(eigen.main(["--quick", "--out", str(tmp_path), "--seeds", "0-1"]))
    assert read(tmp_path / "metrics.json") == summary and summary["seeds"] == [0, 1]
    assert read(tmp_path / "seed_0" / "metrics.json") == first  # moved, not rerun (its timings would differ)
    assert (tmp_path / "seed_0" / "trajectories.png").is_file()
    assert (tmp_path / "seed_1" / "trajectories.png").is_file()
    assert not (tmp_path / "trajectories.png").exists()
    for key, better in summary["better"].items():
        values = [summary["per_seed"][str(s)][key] for s in (0, 1)]
        assert summary["median"][key] == statistics.median(values)
        assert summary["worst"][key] == (max if better == "min" else min)(values)
    assert summary["per_seed"]["0"]["network.cpu_seconds"] == first["network"]["cpu_seconds"]


# ---- issue 26: bounds and the output directory before any work ---------------------------------------------

def test_seed_count_is_capped_before_expanding(capsys):
    assert len(parse_seeds("0-99")) == MAX_SEEDS == 100
    for text in ("0-100000", "0-100", f"0-{2**62}", ",".join(map(str, range(101)))):
        with pytest.raises(ConfigError, match=r"at most 100 seeds"):
            parse_seeds(text)
    runner, run_seed, calls = toy()
    with pytest.raises(SystemExit) as info:
        runner.parser.parse_args(["--help"])
    assert info.value.code == 0 and "at most 100" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["experiment", "benchmark"])
def test_an_out_that_cannot_be_created_is_one_line_before_any_work(tmp_path, capsys, kind):
    runner = Runner("toy", kind=kind)
    calls = []
    bad = [tmp_path / "file" / "sub"]
    (tmp_path / "file").write_text("x")
    if Path("/proc/self").is_dir():
        bad.append(Path("/proc/x"))  # looks writable to os.access as root; mkdir fails
    for out in bad:
        with pytest.raises(SystemExit) as info:
            run_cli(lambda a: runner.main(lambda args, seed, d: calls.append(seed) or {}, a),
                    ["--out", str(out)])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith("error: --out") and err.count("\n") == 1, err
    assert calls == []


def test_the_output_directory_is_created_before_the_work(tmp_path):
    runner = Runner("toy")
    seen = []
    runner.main(lambda args, seed, out: seen.append(out.is_dir()) or {}, ["--out", str(tmp_path / "a" / "b")])
    assert seen == [True]


# ---- issue 26: argparse errors are one line ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["experiment", "benchmark"])
@pytest.mark.parametrize("argv, message", [
    (["--seed", "x"], "error: --seed: invalid int value: 'x'"),
    (["--threads", "1.5"], "error: --threads: invalid int value: '1.5'"),
    (["--scale", "abc"], "error: --scale: invalid float value: 'abc'"),
    (["--seed"], "error: --seed: expected one argument"),
    (["--bogus", "3"], "error: unrecognized arguments: --bogus 3"),
])
def test_argparse_errors_are_one_line_naming_the_value(capsys, kind, argv, message):
    runner, run_seed, calls = toy(kind=kind)
    with pytest.raises(SystemExit) as info:
        run_cli(lambda a: runner.main(run_seed, a), argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert calls == []


def test_seed_and_seeds_together_are_refused(capsys):
    runner, run_seed, calls = toy()
    with pytest.raises(ConfigError, match="--seeds: not allowed with argument --seed"):
        runner.main(run_seed, ["--seed", "3", "--seeds", "0-1"])


EXPERIMENTS = ["eigen", "heat", "mass", "hamiltonian", "double_pendulum", "presnov", "fisher", "robustness",
               "quickstart"]
BENCHMARKS = ["adjoint", "eigen", "fisher", "heat", "invariants", "lipschitz", "memory", "overhead", "solve",
              "structure", "torchdiffeq"]
EXAMPLES = ["ode_demo", "bouncing_ball"]


@pytest.mark.parametrize("module", [f"experiments.{e}" for e in EXPERIMENTS]
                         + [f"benchmarks.{b}" for b in BENCHMARKS] + [f"examples.{e}" for e in EXAMPLES])
def test_every_experiment_and_benchmark_reports_a_bad_option_value_in_one_line(module, capsys):
    main = importlib.import_module(module).main
    for argv, message in ((["--seed", "x"], "error: --seed: invalid int value: 'x'"),
                          (["--no-such-option"], "error: unrecognized arguments: --no-such-option")):
        with pytest.raises(SystemExit) as info:
            run_cli(main, argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith(message) and err.count("\n") == 1, (module, err)


def test_run_all_reports_a_bad_option_value_in_one_line():
    from experiments import run_all

    with pytest.raises(ConfigError, match=r"^--seed: invalid int value: 'x'$"):
        run_all.main(["--seed", "x"])


@pytest.mark.slow
def test_as_a_user_runs_it_one_line_and_help_is_the_full_usage():
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=300, cwd=ROOT)
    bad = run([sys.executable, "-m", "experiments.eigen", "--seed", "x"])
    assert bad.returncode == 2 and bad.stderr == "error: --seed: invalid int value: 'x'\n", bad.stderr
    helped = run([sys.executable, "-m", "experiments.eigen", "--help"])
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m experiments.eigen")
    for option in ("--seeds", "--overwrite", "--out", "--network-budget", "at most 100"):
        assert option in helped.stdout
