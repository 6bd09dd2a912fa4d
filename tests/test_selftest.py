"""The detection self-test: a gross injection on generated data must be caught (fast suite);
the profile's own list on real data runs with ``pytest -m selftest`` (opt-in, minutes)."""

from pathlib import Path

import pytest

from trainguard.audit import selftest
from trainguard.checks import CheckSession
from trainguard.night.execute import execute_case
from trainguard.checks.baseline import evaluation_verdicts
from trainguard.runs.training import deliver
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import load_profile

ROOT = Path(__file__).resolve().parent.parent


def _matrix(tmp_path, profile="smoke", **options):
    return Matrix(Options(load_profile(profile), device="cpu", baselines_dir=ROOT / "baselines",
                          results_dir=tmp_path / "results", run_log=tmp_path / "runlog.jsonl", **options),
                  printer=lambda line: None)


def test_a_gross_injection_is_caught_on_generated_data_and_never_cached(tmp_path):
    matrix = _matrix(tmp_path)
    outcome, = selftest.run_selftest(matrix, [selftest.GROSS], log=tmp_path / "selftest.jsonl", printer=lambda m: None)
    assert outcome.caught and not outcome.skipped
    assert {v.subject for v in outcome.caught_by} >= {"Baseline1-3"}
    assert not (tmp_path / "results").exists() and not (tmp_path / "runlog.jsonl").exists()  # nothing injected stored
    assert (tmp_path / "selftest.jsonl").exists()
    session = CheckSession(matrix)  # the same matrix, untouched afterwards
    kind = session.kind("baseline")
    case = next(c for c in kind.cases(matrix.profile) if c.id == "Baseline1-3")
    execute_case(session, kind, case)  # trains the clean run: the judge only reads
    clean = session.judge(kind, case).verdicts
    assert clean and all(v.passed for v in clean)
    table = selftest.outcome_table([outcome])
    assert list(table["result"]) == ["caught"]


def test_injections_patch_only_inside_their_block(tmp_path):
    from trainguard.engines import engine

    matrix = _matrix(tmp_path)

    def state():
        return tuple(map(id, (engine.normalize, engine.evaluate, engine.models.build, engine.make_criterion,
                              engine.make_optimizer, engine.augment_draws, engine.epoch_order, matrix.profile,
                              matrix.dataset))) + (engine.CROP_PAD,)

    before = state()
    for injection in selftest.CI_INJECTIONS + selftest.SUBTLE_INJECTIONS:
        if not injection.targets:
            continue
        with injection.apply(matrix):
            assert state() != before, injection.name
        assert state() == before, injection.name
    assert {i.kind for i in selftest.CI_INJECTIONS + selftest.SUBTLE_INJECTIONS} == {
        "data", "labels", "preprocessing", "optimiser", "model", "evaluation", "regulariser",
        "augmentation", "data order"}


def test_every_injection_is_caught_by_the_replay_on_generated_data(tmp_path):
    """The smoke goldens (committed) replayed under each CIFAR injection of both lists: every one moves a
    golden run (augmentation ones only where the profile augments: smoke does not)."""
    matrix = _matrix(tmp_path)
    cifar = [i for i in selftest.CI_INJECTIONS + selftest.SUBTLE_INJECTIONS
             if i.targets and i.kind != "augmentation"]
    outcomes = selftest.run_selftest(matrix, cifar, bands=False, printer=lambda m: None)
    missed = [o.injection.name for o in outcomes if not o.caught_by_replay]
    assert not missed, selftest.outcome_table(outcomes).to_markdown()
    assert all(not o.bands_run and "not run (--replay-only)" == selftest.bands_cell(o) for o in outcomes)


def test_unknown_injection_is_named():
    from trainguard.core.spec import ConfigError

    with pytest.raises(ConfigError, match=r"unknown injection\(s\) \['nope'\]; known: half-data"):
        selftest.by_name(["nope"])


@pytest.mark.selftest
def test_the_profile_s_injections_are_all_caught(trainguard_matrix, request):
    """pytest -m selftest --tg-profile ci: every injected regression fails a check — the self-test list on the
    profile's models, each declared experiment's faults on its runs (ci declares the report's two experiments: the
    CIFAR-10 plug-in's faults are the models' injections; hours on 2 CPU cores, `trainguard selftest` writes the
    table). Nothing injected is a failure: a self-test that injects nothing proves nothing."""
    from trainguard.audit.experiment_selftest import profile_faults
    from trainguard.checks import CheckSession

    profile = trainguard_matrix.profile
    outcomes = selftest.run_selftest(trainguard_matrix, selftest.CI_INJECTIONS) if profile.models else []
    faults = profile_faults(CheckSession(trainguard_matrix))[0] if profile.experiments else []
    missed = [o.injection.name for o in outcomes if not o.skipped and not o.caught]
    missed += [o.fault.name for o in faults if o.measured and not o.caught]
    assert [o for o in outcomes if not o.skipped] or [o for o in faults if o.measured], "nothing was injected"
    assert not missed, f"injected regressions not caught: {missed}\n{selftest.outcome_table(outcomes).to_markdown()}"


@pytest.mark.slow  # over 8 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_evaluation_left_in_train_mode_is_caught_exactly(tmp_path):
    """Dropout on at evaluation moves NewModel2's accuracy by about a point on ci — far inside its
    seed noise — but makes a repeated evaluation differ, which a clean run never does."""
    matrix = _matrix(tmp_path)
    clean = deliver(matrix, "NewModel2").epochs[-1].extra["eval_repeat_diff"]
    assert clean == 0.0
    assert evaluation_verdicts(matrix, "NewModel2", 3, 100) == []
    injection, = selftest.by_name(["eval-in-train-mode"])
    outcome = selftest.run_injection(matrix, injection, printer=lambda m: None)
    assert outcome.caught
    assert any(v.metric == "eval_repeat_diff" and "evaluation is random" in v.message for v in outcome.caught_by)


def test_the_repeatability_measurement_survives_a_validation_split():
    import torch

    from trainguard.stores import data
    from trainguard.engines import engine
    from trainguard.core.spec import TrainConfig

    ds = data.reduce(data.synthetic("cifar10", 30, 10), 20, 50, val_per_class=10)
    history = engine.train("Baseline1", ds, TrainConfig(batch_size=32, eval_batch_size=50), 2, 0, torch.device("cpu"))
    assert {"val_acc", "val_loss", "eval_repeat_diff"} <= set(history.epochs[-1].extra)
