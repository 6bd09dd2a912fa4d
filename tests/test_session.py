"""The Matrix on the smoke profile (generated data): the published check averages its seeds."""

import dataclasses

import pytest

from trainguard.checks import CheckSession
from trainguard.checks.baseline import baseline_file
from trainguard.checks.conclusions import conclusion_seeds
from trainguard.runs.training import deliver
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import PublishedCheck, load_profile


@pytest.fixture
def matrix(tmp_path):
    (tmp_path / "published.csv").write_text("model,epochs,train_loss,train_acc,test_acc\n"
                                            "Baseline1,1,2.30,10.0,10.0\nBaseline1,2,2.30,10.0,10.0\n")
    profile = dataclasses.replace(load_profile("smoke"), models=("Baseline1",), checks=("published",),
                                  published=PublishedCheck(seeds=(0, 1)))
    return Matrix(Options(profile, device="cpu", baselines_dir=tmp_path, results_dir=tmp_path / "results"),
                  printer=lambda line: None)


def _published(matrix, budget):
    from trainguard.checks import CheckSession
    from trainguard.night.execute import execute_case

    session = CheckSession(matrix)
    kind = session.kind("published")
    case = next(c for c in kind.cases(matrix.profile) if c.params == ("Baseline1", budget))
    execute_case(session, kind, case)  # its runs first: the judge only reads
    return session, session.judge(kind, case).verdicts


def test_published_verdicts_use_the_mean_over_the_configured_seeds(matrix):
    from trainguard.night.execute import execute_case

    session, verdicts = _published(matrix, 2)
    assert [v.metric for v in verdicts] == ["train_loss", "test_acc"]  # train_acc has no band by default
    runs = [deliver(matrix, "Baseline1", seed).at(2) for seed in (0, 1)]
    assert verdicts[1].measured == pytest.approx((runs[0].test_acc + runs[1].test_acc) / 2)
    assert verdicts[1].expected == 10.0 and verdicts[1].allowed == 2.5
    for kind, case in session.cases():
        execute_case(session, kind, case)
    assert all(v.check == "published" for v in session.verdicts())


def test_published_check_without_the_table_fails_naming_the_file(matrix, tmp_path):
    (tmp_path / "published.csv").unlink()
    _, (verdict,) = _published(matrix, 2)
    assert not verdict.passed and "published.csv, which is missing" in verdict.message


def test_bf16_and_compile_are_their_own_baseline_classes(tmp_path):
    base = Options(load_profile("smoke"), device="cpu", baselines_dir=tmp_path, results_dir=tmp_path / "r",
                   run_log=None)
    bf16 = Matrix(dataclasses.replace(base, precision="bf16"), printer=lambda line: None)
    fp32 = Matrix(base, printer=lambda line: None)
    assert (fp32.device_class, bf16.device_class) == ("cpu", "cpu-bf16")
    assert baseline_file(bf16).name == "cpu-bf16.csv"
    assert Matrix(dataclasses.replace(base, compile=True), printer=lambda line: None).device_class == "cpu-compile"
    assert bf16.run_spec("Baseline2", 0).key() != fp32.run_spec("Baseline2", 0).key()
    a, b = deliver(bf16, "Baseline2"), deliver(fp32, "Baseline2")
    assert a.completed and [e.train_loss for e in a.epochs] != [e.train_loss for e in b.epochs]


def test_unknown_precision_is_a_config_error(tmp_path):
    from trainguard.core.spec import ConfigError

    with pytest.raises(ConfigError, match="--precision 'fp8'"):
        Matrix(Options(load_profile("smoke"), device="cpu", precision="fp8"))


def test_conclusions_use_the_seed_mean_where_the_published_check_is_on(matrix):
    """One seed's dip must not fail "more epochs help" when the seeds' mean improves, and vice versa."""
    both = dataclasses.replace(matrix.profile, checks=("published", "budget_improves", "ranking"))
    averaged = Matrix(dataclasses.replace(matrix.options, profile=both), printer=lambda line: None)
    assert conclusion_seeds(averaged) == (0, 1)
    acc = {(seed, budget): deliver(averaged, "Baseline1", seed).at(budget).test_acc for seed in (0, 1) for budget in (2, 3)}
    session = CheckSession(averaged)

    def judged(kind, case_id):
        kind = session.kind(kind)
        verdict, = session.judge(kind, next(c for c in kind.cases(averaged.profile) if c.id == case_id)).verdicts
        return verdict

    verdict = judged("budget_improves", "Baseline1")
    assert verdict.measured == pytest.approx((acc[0, 3] + acc[1, 3]) / 2)
    assert verdict.expected == pytest.approx((acc[0, 2] + acc[1, 2]) / 2)
    assert verdict.passed == (verdict.measured > verdict.expected)
    assert "mean over seeds 0, 1" in verdict.message and "mean over seeds 0, 1" in judged("ranking", "3").message
    single = dataclasses.replace(matrix.profile, checks=("budget_improves",))
    assert conclusion_seeds(Matrix(dataclasses.replace(matrix.options, profile=single), printer=lambda line: None)) == (100,)


def test_the_thread_count_is_part_of_a_run_s_key(tmp_path):
    """1 and 2 torch threads round NewModel2's convolutions differently: never serve one for the other."""
    import torch

    matrix = Matrix(Options(load_profile("smoke"), device="cpu", results_dir=tmp_path / "r", run_log=None),
                    printer=lambda line: None)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = matrix.run_spec("NewModel2", 100).key()
        torch.set_num_threads(2)
        two = matrix.run_spec("NewModel2", 100).key()
    finally:
        torch.set_num_threads(before)
    assert one != two


def test_the_instruction_set_is_part_of_a_run_s_key(tmp_path, monkeypatch):
    """AVX2 and AVX-512 kernels round differently: a cache shared by two CPU classes keeps a run per class."""
    from trainguard.core import environment

    matrix = Matrix(Options(load_profile("smoke"), device="cpu", results_dir=tmp_path / "r", run_log=None),
                    printer=lambda line: None)
    here = matrix.run_spec("NewModel2", 100).key()
    real = environment.versions
    monkeypatch.setattr("trainguard.runs.matrix.versions", lambda: {**real(), "isa": "another"})
    assert matrix.run_spec("NewModel2", 100).key() != here


def test_the_report_states_the_versions_the_checked_runs_recorded(tmp_path):
    """A report re-rendered from a run log on another machine says the runs' versions, not the renderer's; runs that
    disagree show both values; runs that recorded none (an older log) fall back to this process's."""
    from trainguard.core.environment import versions
    from trainguard.core.history import History

    matrix = Matrix(Options(load_profile("smoke"), device="cpu", results_dir=tmp_path / "r", run_log=None),
                    printer=lambda line: None)
    seed = matrix.seeds[0]
    assert matrix.runs_versions() == versions()
    matrix.preload({("Baseline1", seed): History("Baseline1", seed, "cpu", 0, spec={"versions": {"isa": "AVX2"}}),
                    ("Baseline2", seed): History("Baseline2", seed, "cpu", 0, spec={"versions": {"isa": "AVX512"}}),
                    ("NewModel1", 999): History("NewModel1", 999, "cpu", 0, spec={"versions": {"isa": "SSE"}})})
    assert matrix.runs_versions() == {"isa": "AVX2 / AVX512"}  # seed 999 is not a checked seed
    assert "isa AVX2 / AVX512" in matrix.environment()["versions"]


def test_versions_are_plain_strings_that_xdist_can_send():
    """A run's History carries its versions to the pytest-xdist controller; execnet refuses str subclasses such
    as torch's TorchVersion."""
    from trainguard.core.environment import versions

    assert all(type(value) is str for value in versions().values()), versions()


def test_a_night_gives_the_process_its_thread_count_back(tmp_path):
    """An in-process night (pytest's runpytest_inprocess, a notebook) pins the thread count for its runs and
    gives the old count back when it closes: the next night in that process must not round at this one's count."""
    import torch

    before = torch.get_num_threads()
    matrix = Matrix(Options(load_profile("smoke"), device="cpu", threads=before + 1, results_dir=tmp_path / "r"),
                    printer=lambda *a: None)
    assert torch.get_num_threads() == before + 1
    matrix.close()
    assert torch.get_num_threads() == before
