"""The execute stage on a real local Ray cluster (trainguard.night.cluster): the same numbers and verdicts as in process,
the same baseline files, a user's error a failed run, a lost worker retried, an unreachable cluster an error.

One cluster per test process (``ray.init(num_cpus=2)``, as Ray's own test suites do): starting one costs
seconds, and a cold cluster's workers import torch before their first task, so the tests of this module share
one, and those that need it are marked slow; the fast suite keeps what needs no cluster (an unreachable address,
the options, the manifest)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trainguard import cli
from trainguard.api import run_profile
from trainguard.runs.options import Options, RayResources
from trainguard.core.spec import load_profile

SMOKE = (Path(__file__).parent.parent / "harness" / "profiles" / "smoke.toml").read_text()
QUIET = dict(replay=False, figures=False, threads=1, device="cpu")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for this module's tests; joined by every executor they build. Shut down when
    the module's tests are done: its processes would otherwise share the cores with the rest of the suite."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # read when ray is imported: every epoch line in the output
    ray = pytest.importorskip("ray")  # here, not at collection: importing Ray costs every collecting process seconds
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", object_store_memory=200 * 1024 ** 2)
    yield ray
    ray.shutdown()


def _profile(tmp_path, name="night", models=None, extra=""):
    """The smoke profile as a file of the test's own (so a user's model module beside it is found)."""
    text = SMOKE.replace('name = "smoke"', f'name = "{name}"')
    if models is not None:
        text = text.replace('models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', f"models = {json.dumps(models)}")
    path = tmp_path / f"{name}.toml"
    path.write_text(text + extra)
    return load_profile(str(path))


def _night(tmp_path, profile, executor, where, results=None, **options):
    lines = []
    results_dir = options.pop("results_dir", tmp_path / (results or where) / "results")
    options = Options(profile, results_dir=results_dir, run_log=tmp_path / where / "runlog.jsonl",
                      baselines_dir=tmp_path / "baselines", executor=executor, **{**QUIET, **options})
    summary = run_profile(options, printer=lines.append)
    return summary, lines


def _curves(tmp_path, where):
    """Every completed run's curve in the night's run log, by (model, seed)."""
    from trainguard.stores.runlog import histories_from_log

    return {key: [(e.train_loss, e.train_acc, e.test_loss, e.test_acc) for e in h.epochs]
            for key, h in histories_from_log(tmp_path / where / "runlog.jsonl").items()}


def _run_events(log: Path, event: str):
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == event]


def _experiment_records(results: Path) -> dict:
    """A declared experiment's stored runs under a night's result cache, every step and epoch (times aside)."""
    return {f.relative_to(results).as_posix(): {k: v for k, v in json.loads(f.read_text()).items()
            if k not in ("seconds", "epoch_seconds")}  # times: each run its own
            for f in sorted((results / "experiments").rglob("seed*.json"))}


@pytest.mark.slow
@pytest.mark.generated
def test_a_night_on_ray_gives_the_same_numbers_and_verdicts_as_in_process_and_resumes_from_the_cache(tmp_path,
                                                                                                       ray_cluster):
    # NewModel2: the model whose training amplifies rounding differences most (docs/speed.md); and a declared
    # experiment beside the models, whose runs go to the cluster too
    (tmp_path / "regression.py").write_text(EXPERIMENT)
    text = SMOKE.replace('name = "smoke"', 'name = "night"\nexperiments = ["regression.py:regression"]').replace(
        'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["Baseline1", "NewModel2"]')
    (tmp_path / "night.toml").write_text(text)
    profile = load_profile(str(tmp_path / "night.toml"))
    assert cli.main(["baselines", "update", "--profile", profile.source, "--skip-models", "--skip-golden", "--threads",
                     "1", "--device", "cpu", "--baselines-dir", str(tmp_path / "baselines")]) == 0
    local, _ = _night(tmp_path, profile, "local", "local")
    on_ray, lines = _night(tmp_path, profile, "ray", "ray")
    assert _curves(tmp_path, "ray") == _curves(tmp_path, "local") and len(_curves(tmp_path, "local")) == 2
    ray_runs = _experiment_records(tmp_path / "ray" / "results")
    assert ray_runs == _experiment_records(tmp_path / "local" / "results") and len(ray_runs) == 2  # bit for bit
    assert [(v.check, v.passed, v.message) for v in on_ray.verdicts] == [(v.check, v.passed, v.message)
                                                                        for v in local.verdicts]
    checked = [v for v in on_ray.verdicts if v.check == "experiment"]  # (the models have no baseline here)
    assert len(checked) == 2 and all(v.passed for v in checked)
    assert "[trainguard] Ray: 2 training task(s) on 1 node(s), 2 CPU(s)" in lines
    assert any(line.startswith("[trainguard] Ray: 2 run(s) of regression on") for line in lines), lines
    assert any(n.startswith("executor: Ray — 2 run(s) trained on") for n in on_ray.notes)
    starts = _run_events(tmp_path / "ray" / "runlog.jsonl", "run_start")
    assert sorted(e["model"] for e in starts if e.get("executor") == "ray") == ["Baseline1", "NewModel2"]
    # a night killed halfway: what the driver stored is not trained again
    results = tmp_path / "ray" / "results"
    sorted((results / "night").rglob("*.json"))[0].unlink()  # one model's run
    sorted((results / "experiments").rglob("seed*.json"))[0].unlink()  # and one of the experiment's
    again, lines = _night(tmp_path, profile, "ray", "again", results="ray")
    assert "[trainguard] Ray: 1 training task(s) on 1 node(s), 2 CPU(s)" in lines
    assert any(line.startswith("[trainguard] Ray: 1 run(s) of regression on") for line in lines), lines


@pytest.mark.slow
@pytest.mark.generated
def test_baselines_update_on_ray_writes_the_same_files_as_in_process(tmp_path, ray_cluster, capsys):
    profile = _profile(tmp_path, models=["Baseline1", "NewModel1"])
    written = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        assert cli.main(["baselines", "update", "--profile", profile.source, "--executor", executor, "--threads", "1",
                         "--device", "cpu", "--baselines-dir", str(out), "--results-dir", str(out / "results"),
                         "--run-log", str(out / "runlog.jsonl"), "--skip-golden"]) == 0
        written[executor] = {p.relative_to(out / "night").as_posix(): p.read_bytes()
                             for p in (out / "night").iterdir() if not p.name.startswith(".")}
    assert "Ray: 10 training task(s)" in capsys.readouterr().out
    assert written["ray"] == written["local"] and set(written["ray"]) == {"cpu.csv", "cpu-seeds.csv", "cpu.meta.json"}


BOOM = '''
import torch.nn as nn


class Boom(nn.Module):
    """A user's model with a bug: it fails in its forward pass."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        raise ValueError("shapes do not match in Boom.forward")
'''


@pytest.mark.slow
@pytest.mark.generated
def test_a_user_code_error_fails_that_run_with_its_message_and_the_night_goes_on(tmp_path, ray_cluster):
    (tmp_path / "boom.py").write_text(BOOM)
    profile = _profile(tmp_path, models=["Baseline1", "boom:Boom"])
    summary, lines = _night(tmp_path, profile, "ray", "ray", strict=True)
    stops = {e["run"].split("-")[0]: e for e in _run_events(tmp_path / "ray" / "runlog.jsonl", "run_stop")}
    starts = {e["model"]: e["run"].split("-")[0] for e in _run_events(tmp_path / "ray" / "runlog.jsonl", "run_start")}
    boom, fine = stops[starts["boom:Boom"]], stops[starts["Baseline1"]]
    assert boom["status"] == "error" and "ValueError: shapes do not match in Boom.forward" in boom["message"]
    assert f"{tmp_path / 'boom.py'}:" in boom["message"]  # where, in the user's own file
    assert fine["status"] == "completed"
    assert any("boom:Boom seed 100: run error" in v.message for v in summary.failed)  # its check fails, saying why
    assert any("Ray: boom:Boom seed 100 error on" in line for line in lines)


def test_an_unreachable_ray_address_is_an_error_naming_it_before_anything_trains(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--profile", "smoke", "--executor", "ray", "--ray-address", "127.0.0.1:1"]) == 2
    out, err = capsys.readouterr()
    assert "--ray-address 127.0.0.1:1: nothing answers there" in err
    assert "replaying" not in out and not (tmp_path / ".trainguard" / "runlog.jsonl").exists()  # nothing ran at all


@pytest.mark.slow
@pytest.mark.generated
def test_a_task_no_node_can_place_ends_the_night_with_a_sentence_within_a_bounded_wait(tmp_path, ray_cluster,
                                                                                      monkeypatch):
    """--gpus-per-run 1 on a cluster without GPUs: Ray would wait for ever; the night ends once no node could place
    the task for TRAINGUARD_RAY_PLACEMENT_TIMEOUT seconds, its runs failed with why, the report written."""
    monkeypatch.setenv("TRAINGUARD_RAY_PLACEMENT_TIMEOUT", "3")
    profile = _profile(tmp_path, models=["Baseline1"])
    started = time.monotonic()
    summary, lines = _night(tmp_path, profile, "ray", "ray", ray=RayResources(gpus_per_run=1.0))
    waited = time.monotonic() - started
    assert waited < 60, waited  # the bound: 3 s of grace, one poll, the night's own work
    assert summary.result == "FAIL"
    assert any("no node of the cluster can place a task asking for 1 CPU, 1 GPU" in line for line in lines), lines
    stops = _run_events(tmp_path / "ray" / "runlog.jsonl", "run_stop")
    assert stops and all(e["status"] == "error" and "could never run" in e["message"] for e in stops)
    print(f"unplaceable task: the night ended after {waited:.1f} s")


@pytest.mark.slow
@pytest.mark.generated
def test_a_ray_driver_and_another_night_sharing_a_result_folder_train_each_run_once(tmp_path, ray_cluster):
    """The Ray driver takes each run's result lock, as a night in process does: the two nights take turns, and the
    second reads what the first trained instead of training it again."""
    profile = _profile(tmp_path, models=["Baseline1", "NewModel2"])
    shared = tmp_path / "shared-results"
    other = subprocess.Popen([sys.executable, "-m", "trainguard", "run", "--profile", str(tmp_path / "night.toml"),
                              "--device", "cpu", "--threads", "1", "--no-replay", "--no-figures", "--results-dir",
                              str(shared), "--run-log", str(tmp_path / "local" / "runlog.jsonl"), "--report",
                              str(tmp_path / "local" / "report.md"), "--seeds", "100,101"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    summary, lines = _night(tmp_path, profile, "ray", "ray", seeds=(100, 101), results_dir=shared)
    out, _ = other.communicate(timeout=600)
    assert other.returncode in (0, 1, 5), out[-2000:]
    trained = [(e["model"], e["seed"]) for where in ("ray", "local") if (tmp_path / where / "runlog.jsonl").exists()
               for e in _run_events(tmp_path / where / "runlog.jsonl", "run_start")]
    assert sorted(trained) == sorted({(m, s) for m in ("Baseline1", "NewModel2") for s in (100, 101)}), trained


def test_only_the_user_s_python_modules_travel_to_a_cluster(tmp_path):
    from trainguard.night.cluster import code_bundle

    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "mynet.py").write_text("X = 1\n")
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "layers.py").write_text("Y = 2\n")
    for secret in (".env", ".env.local", "id_rsa", "credentials.json", "cloud.pem"):
        (project / secret).write_text("secret\n")
    for folder in (".git", ".venv", "reports", ".trainguard", "__pycache__", ".aws"):
        (project / folder).mkdir()
        (project / folder / "leak.py").write_text("secret = 1\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert code_bundle(project, bundle) == ["mynet.py", "pkg/__init__.py", "pkg/layers.py"]
    assert sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()) == [
        "mynet.py", "pkg/__init__.py", "pkg/layers.py"]


def test_a_task_that_returns_other_runs_than_it_was_sent_fails_them_saying_so():
    from types import SimpleNamespace

    from trainguard.core.history import History
    from trainguard.night.cluster import RemoteResult, _matching

    matrix = SimpleNamespace(device=__import__("torch").device("cpu"))
    runs = [SimpleNamespace(model="Baseline1", seed=100), SimpleNamespace(model="Baseline1", seed=101)]
    one = History.not_trained("Baseline1", 100, "cpu", "completed", "")
    checked = _matching(runs, RemoteResult([one], "host", 1, 1.0), matrix)  # one history for two runs
    assert [(h.model, h.seed, h.status) for h in checked.histories] == [("Baseline1", 100, "error"),
                                                                        ("Baseline1", 101, "error")]
    assert "returned runs [('Baseline1', 100)] for [('Baseline1', 100), ('Baseline1', 101)]" in checked.histories[0].message
    swapped = _matching(runs[:1], RemoteResult([History.not_trained("NewModel2", 100, "cpu", "completed", "")],
                                               "host", 1, 1.0), matrix)
    assert swapped.histories[0].status == "error"


def test_ray_resources_come_from_the_options(tmp_path):
    from trainguard.options import session_options

    values = {"strict": False, "device": "cpu", "seeds": None, "allow_baseline_seeds": False, "data_dir": None,
              "no_result_cache": True, "results_dir": None, "offline": True, "run_log": None, "precision": "fp32",
              "compile": False, "executor": "ray", "ray_address": "ray://head:10001", "cpus_per_run": 2.0,
              "gpus_per_run": 1.0, "ray_retries": 0}
    options = session_options(values, load_profile("smoke"))
    assert options.executor == "ray"
    assert options.ray == RayResources("ray://head:10001", cpus_per_run=2.0, gpus_per_run=1.0, retries=0)


SLOW = '''
import time

import torch.nn as nn


class SlowNet(nn.Module):
    """A small model that takes its time (a run long enough to lose its worker in the middle)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        time.sleep(0.15)
        return self.fc(x.flatten(1).float())
'''


def _task_pids(name: str) -> list[int]:
    """Processes running the Ray task ``name`` (Ray titles a worker ``ray::<task>`` while it runs one)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().startswith(f"ray::{name}".encode()):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
@pytest.mark.generated
def test_a_worker_killed_in_the_middle_of_a_run_is_retried_and_nothing_is_lost_or_duplicated(tmp_path, ray_cluster):
    (tmp_path / "slownet.py").write_text(SLOW)
    profile = _profile(tmp_path, models=["slownet:SlowNet"])
    result, killed = {}, []

    def night():
        result["summary"], result["lines"] = _night(tmp_path, profile, "ray", "ray")

    thread = threading.Thread(target=night)
    thread.start()
    deadline = time.monotonic() + 120
    while not killed and time.monotonic() < deadline and thread.is_alive():
        for pid in _task_pids("train_remote"):
            time.sleep(1.0)  # in the middle of its first epoch
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            break
        time.sleep(0.1)
    thread.join(timeout=300)
    assert killed, "the run's worker was never seen"
    log = tmp_path / "ray" / "runlog.jsonl"
    assert [e["status"] for e in _run_events(log, "run_stop")] == ["completed"]
    assert len(_run_events(log, "run_start")) == 1 and len(_run_events(log, "run_stop")) == 1
    assert len(_run_events(log, "epoch_end")) == 3
    assert any(f"(pid {killed[0]})" not in line and "Ray: slownet:SlowNet seed 100 completed" in line
               for line in result["lines"])


@pytest.mark.slow
@pytest.mark.generated
def test_the_plugin_night_runs_on_ray(pytester):
    """`pytest -m slow --tg-executor ray` on the smoke profile, in a process of its own (its own local cluster)."""
    pytester.makepyfile(test_night='''
import pytest


@pytest.mark.slow
@pytest.mark.trainguard_kinds("baseline")
def test_cell(trainguard_case):
    trainguard_case.check()
''')
    result = pytester.runpytest_subprocess("-m", "slow", "--tg-profile", "smoke", "--tg-executor", "ray",
                                           "--tg-threads", "1", "--tg-no-figures", "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*Ray: 4 training task(s) on 1 node(s), 2 CPU(s)*"])
    assert "executor: Ray — 4 run(s) trained on" in (pytester.path / "reports" / "report.md").read_text()


def test_the_kuberay_manifest_is_a_rayjob_whose_entrypoint_this_version_accepts():
    """deploy/kuberay-night.yaml parsed: the fields KubeRay's RayJob needs, the image's Ray version, and an
    entrypoint whose trainguard options this version's parser accepts (not validated against the CRD schema)."""
    import shlex

    import yaml

    root = Path(__file__).parent.parent
    job = yaml.safe_load((root / "deploy" / "kuberay-night.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob" and job["metadata"]["name"]
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] and isinstance(cluster["headGroupSpec"]["rayStartParams"], dict)
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["template"]["spec"]["containers"][0]["image"] == head["image"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    dockerfile = (root / "deploy" / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{cluster['rayVersion']}-" in dockerfile  # one Ray version in image and cluster
    command = shlex.split(job["spec"]["entrypoint"].split("&&", 1)[1])
    assert command[:2] == ["trainguard", "run"]
    args = cli.build_parser().parse_args(command[1:])
    assert args.executor == "ray" and args.ray_address == "auto" and args.gpus_per_run == 1


@pytest.mark.slow
@pytest.mark.generated
def test_the_ray_benchmark_runs_and_finds_the_same_numbers_on_both_sides():
    """benchmarks/ray_vs_process.py (docs/speed.md), in a process of its own (it starts its own cluster)."""
    root = Path(__file__).parent.parent
    run = subprocess.run([sys.executable, "-m", "benchmarks.ray_vs_process"], capture_output=True, text=True,
                         timeout=600, cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "numbers identical on both sides: yes" in run.stdout and "ratio in-process / Ray = " in run.stdout


def test_the_selftest_refuses_the_ray_executor_saying_why(tmp_path, capsys):
    assert cli.main(["selftest", "--profile", "smoke", "--executor", "ray", "--report", str(tmp_path / "s.md")]) == 2
    assert "the self-test injects its regressions into this process's code" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.generated
def test_ctrl_c_on_the_driver_cancels_the_outstanding_tasks(tmp_path, ray_cluster):
    """A KeyboardInterrupt while the driver waits (here raised by its printer at the first finished run): every
    task still queued or running is cancelled, none is left training on the cluster."""
    from trainguard.checks import CheckSession
    from trainguard.night.cluster import RayExecutor
    from trainguard.night.plan import plan_night
    from trainguard.runs.matrix import Matrix

    (tmp_path / "slownet.py").write_text(SLOW)
    profile = _profile(tmp_path, models=["slownet:SlowNet"])
    options = Options(profile, results_dir=tmp_path / "results", run_log=tmp_path / "runlog.jsonl",
                      baselines_dir=tmp_path / "baselines", executor="ray", seeds=(100, 101, 102, 103), **QUIET)
    matrix = Matrix(options, printer=lambda line: None)
    session = CheckSession(matrix)

    def interrupted(line):
        if "completed on" in line:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            RayExecutor(options.ray, printer=interrupted).execute(plan_night(session), session)
    finally:
        matrix.close()  # gives back the torch thread count it set: later tests' cache keys include it
    deadline = time.monotonic() + 30
    while _task_pids("train_remote") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _task_pids("train_remote"), "a task went on training after Ctrl-C"
    assert len(_run_events(tmp_path / "runlog.jsonl", "run_stop")) == 1  # the one recorded before the interrupt


EXPERIMENT = '''
import numpy as np
import trainguard


@trainguard.experiment(metrics={"mse": "lower"}, budgets=(2,), baseline_seeds=(0, 1, 2), check_seeds=(100,),
                       variants={"small": {"batch": 4}, "large": {"batch": 16}})
def regression(run):
    if (__import__("pathlib").Path(__file__).parent / f"broken-{run.seed}").exists():
        raise ValueError("this seed's data is broken")
    rng = np.random.default_rng(run.seed)
    x = np.linspace(-1, 1, 64)
    y = 3.0 * x + 0.5 + 0.1 * rng.standard_normal(64)
    w = b = 0.0
    for epoch in range(run.budget):
        for index in np.array_split(rng.permutation(64), 64 // run.settings["batch"]):
            error = w * x[index] + b - y[index]
            w, b = w - 0.1 * float(np.mean(error * x[index])), b - 0.1 * float(np.mean(error))
            run.step(loss=float(np.mean(error ** 2)))
        run.epoch(mse=float(np.mean((w * x + b - y) ** 2)))
'''


@pytest.mark.slow
def test_any_experiment_s_runs_on_ray_are_the_runs_in_process_and_a_failing_one_is_that_run_s_result(tmp_path,
                                                                                                    ray_cluster, capsys):
    """trainguard guard --executor ray, on an experiment that is no profile: the records equal the in-process ones
    (every step, every epoch), the check passes against either baseline, a run whose function raises is that
    run's error with the message, and a second baseline on Ray reads the store, training nothing."""
    from trainguard.stores.experiment_records import ExperimentStore

    (tmp_path / "regression.py").write_text(EXPERIMENT)
    target = f"{tmp_path / 'regression.py'}:regression"
    assert cli.main(["guard", target, "baseline", "--dir", str(tmp_path / "here")]) == 0
    assert cli.main(["guard", target, "baseline", "--dir", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    out = capsys.readouterr().out
    assert out.count("[trainguard] Ray: regression") == 6 and "completed on" in out

    def records(where):
        files = sorted((tmp_path / where).rglob("seed*.json"))
        return {f.relative_to(tmp_path / where): {k: v for k, v in json.loads(f.read_text()).items()
            if k not in ("seconds", "epoch_seconds")}  # times: each run its own
                for f in files}

    assert records("here") == records("ray") and len(records("ray")) == 6
    assert cli.main(["guard", target, "baseline", "--dir", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert "Ray:" not in capsys.readouterr().out  # every run from the store
    assert cli.main(["guard", target, "check", "--dir", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    (tmp_path / "broken-101").touch()  # the workers read the same files (a local cluster)
    assert cli.main(["guard", target, "check", "--seeds", "101", "--dir", str(tmp_path / "ray"), "--executor",
                     "ray"]) == 1
    out = capsys.readouterr().out
    assert "ValueError: this seed's data is broken" in out
    assert not list((tmp_path / "ray").rglob("seed101-*.json"))  # a failed run is never stored


def test_an_experiment_task_that_returns_another_run_or_other_code_is_refused_naming_both(tmp_path):
    from trainguard.core.experiment import load_experiment
    from trainguard.night.experiment_cluster import _Submitter
    from trainguard.stores.experiment_records import Record

    (tmp_path / "regression.py").write_text(EXPERIMENT)
    experiment = load_experiment(f"{tmp_path / 'regression.py'}:regression")
    source = experiment.source_fingerprint()
    submit = _Submitter(experiment, "x", RayResources(), 2, 1, "cpu", None, None, print)
    right = Record("regression", "small", 100, 2, 1, source, epochs={"mse": [1.0, 0.5]})
    assert submit._matching(right, "small", 100, source) is right
    other_seed = submit._matching(Record("regression", "small", 7, 2, 1, source), "small", 100, source)
    assert other_seed.status == "error" and "returned the run" in other_seed.message and "7" in other_seed.message
    other_code = submit._matching(Record("regression", "small", 100, 2, 1, "f" * 64), "small", 100, source)
    assert other_code.status == "error" and "other code" in other_code.message and source[:12] in other_code.message


def test_an_experiment_task_carries_the_night_s_arithmetic_to_the_worker(tmp_path):
    """--precision / --compile reach the function on a Ray worker as in process (run_task is the task's body; the
    driver's _Submitter builds the task)."""
    from trainguard.core.experiment import load_experiment
    from trainguard.night.experiment_cluster import ExperimentTask, _Submitter, run_task

    (tmp_path / "arith.py").write_text(
        "import trainguard\n\n"
        "@trainguard.experiment(metrics={'bf16': 'higher', 'compiled': 'higher'}, precisions=('fp32', 'bf16'),\n"
        "                       compiles=True)\n"
        "def arith(run):\n"
        "    run.epoch(bf16=float(run.precision == 'bf16'), compiled=float(run.compile))\n")
    target = f"{tmp_path / 'arith.py'}:arith"
    submit = _Submitter(load_experiment(target), target, RayResources(), 1, 1, "cpu", None, None, print)
    submit.arithmetic = ("bf16", True)
    task = submit._task(target, "default", 100)
    assert (task.precision, task.compile) == ("bf16", True)
    record, _, _ = run_task(task)
    assert record.completed and record.epochs == {"bf16": [1.0], "compiled": [1.0]}
    plain, _, _ = run_task(ExperimentTask(target, "default", 100, 1, 1, "cpu", None, None))
    assert plain.epochs == {"bf16": [0.0], "compiled": [0.0]}
