"""Every bad input is one sentence naming the file and key: each profile key of the wrong type, each way a user's
model path can be wrong; and user code handled as what it is (sys.path restored, its helpers fingerprinted).
The table of what was tried is docs/reliability.md."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainguard import cli
from trainguard.stores import results
from trainguard.core.environment import git_commit
from trainguard.core.spec import TOP_LEVEL, ConfigError, load_profile, parse_profile

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {"name": "x", "dataset": "cifar10", "budgets": [1], "models": ["Baseline1"]}

#: A wrong value for each kind of key (and one more where a plain wrong type would pass another check).
WRONG = {"str": 5, "bool": "yes", "int": "1", "positive int": "3", "number": "0.5", "positive number": "10",
         "ints": "0,1", "strs": "Baseline1", "table": 3}


@pytest.mark.parametrize("key", sorted(TOP_LEVEL))
def test_every_top_level_key_of_the_wrong_type_is_named(key):
    raw = {**MINIMAL, key: WRONG[TOP_LEVEL[key]]}
    with pytest.raises(ConfigError, match=rf"x.toml: '{key}' must be"):
        parse_profile(raw, source="x.toml")


SECTION_KEYS = [
    ("statistics", "false_alarm_rate", "0.01"), ("statistics", "window", 1.5), ("statistics", "power", "high"),
    ("statistics", "start_window", "2"), ("statistics", "start_models", "Baseline1"),
    ("golden", "epochs", "3"), ("golden", "enabled", 1), ("golden", "isa", "true"), ("golden", "threads", 2.0),
    ("published", "seeds", "0,1"), ("published", "test_acc", "2.5"),
    ("training", "lr", "0.01"), ("training", "batch_size", 32.5), ("training", "momentum", True),
    ("training", "optimizer", "sgdm"), ("training", "per_model", "Baseline1"),
]


@pytest.mark.parametrize("section, key, value", SECTION_KEYS, ids=[f"{s}.{k}" for s, k, _ in SECTION_KEYS])
def test_every_section_key_of_the_wrong_type_is_named(section, key, value):
    raw = {**MINIMAL, section: {key: value}}
    with pytest.raises(ConfigError) as error:
        parse_profile(raw, source="x.toml")
    assert "x.toml" in str(error.value) and repr(key) in str(error.value) or f"[{section}" in str(error.value)
    assert key in str(error.value)


def test_a_misspelt_top_level_key_is_named_not_ignored():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['baseline_seed'\]"):
        parse_profile({**MINIMAL, "baseline_seed": [0, 1]}, source="x.toml")


def test_profiles_are_read_as_utf8_whatever_the_locale(tmp_path):
    path = tmp_path / "p.toml"
    path.write_bytes('name = "p"\ndescription = "Überprüfung — café"\ndataset = "synthetic"\nbudgets = [1]\n'
                     'models = ["Baseline1"]\n'.encode("utf-8"))
    assert load_profile(str(path)).description == "Überprüfung — café"
    path.write_bytes('name = "p"\ndescription = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"p.toml is not UTF-8 text"):
        load_profile(str(path))


def test_the_built_in_profiles_parse():
    for name in ("smoke", "ci", "seed", "gpu-timing"):
        assert load_profile(name).name == name


# ------------------------------------------------------------------------------------ user models

NET = textwrap.dedent("""
    from torch import nn
    from helpers import width


    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(3 * 32 * 32, width())

        def forward(self, x):
            return self.head(x.flatten(1))


    def not_a_model():
        return 42


    def failing_factory():
        raise ValueError("width must be positive")

    CONSTANT = 3
""")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project directory: a model module importing a helper of its own, and a profile using it."""
    (tmp_path / "mynets.py").write_text(NET)
    (tmp_path / "helpers.py").write_text("def width():\n    return 10\n")
    smoke = (ROOT / "harness" / "profiles" / "smoke.toml").read_text()
    (tmp_path / "mine.toml").write_text(smoke.replace('name = "smoke"', 'name = "mine"').replace(
        'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["mynets:TinyNet"]'))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("mynets", "helpers", "broken", "raising"):
        sys.modules.pop(name, None)


def _night(profile: str, capsys) -> tuple[int, str]:
    code = cli.main(["run", "--profile", profile, "--device", "cpu", "--no-replay", "--no-figures"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("module, models, expected", [
    ("broken.py", "broken:Net", r"model 'broken:Net': .*broken.py, line 2: syntax error"),
    ("raising.py", "raising:Net", r"model 'raising:Net': importing 'raising' raised RuntimeError: no GPU driver "
                                  r"\(.*raising.py, line 3\)"),
    (None, "mynets:Nope", r"module 'mynets' has no attribute 'Nope'"),
    (None, "nosuch:Net", r"module 'nosuch' cannot be imported"),
    (None, "mynets:CONSTANT", r"'CONSTANT' is not a class or a zero-argument factory"),
    # found at plan time, before the first run, not when the run starts
    (None, "mynets:not_a_model", r"model 'mynets:not_a_model': its factory returned int, not a torch.nn.Module"),
    (None, "mynets:failing_factory", r"model 'mynets:failing_factory': calling it raised ValueError: width must be "
                                     r"positive \(.*mynets.py:\d+\)"),
])
def test_every_wrong_model_path_names_the_profile_and_the_path_exit_2(project, capsys, module, models, expected):
    if module == "broken.py":
        (project / module).write_text("class Net:\n    def (self):\n")
    elif module == "raising.py":
        (project / module).write_text("import torch\n\nraise RuntimeError('no GPU driver')\n")
    text = (project / "mine.toml").read_text().replace('models = ["mynets:TinyNet"]', f'models = ["{models}"]')
    (project / "bad.toml").write_text(text)
    code, err = _night("bad.toml", capsys)
    assert code == 2 and "Traceback" not in err
    assert not (project / ".trainguard" / "runlog.jsonl").exists()  # refused before anything trained
    assert "profile bad.toml" in err, err
    assert __import__("re").search(expected, err), err


def test_a_factory_that_returns_no_module_is_named(project):
    from trainguard import models

    with pytest.raises(models.ModelError, match=r"model 'mynets:not_a_model': its factory returned int"):
        models.build("mynets:not_a_model", (project,))


def test_importing_a_user_model_leaves_sys_path_as_it_was(project):
    from trainguard.runs.matrix import Matrix
    from trainguard.runs.options import Options

    before = list(sys.path)
    os.chdir(project.parent)  # the profile's directory is searched because it holds the profile, not the cwd
    Matrix(Options(load_profile(str(project / "mine.toml")), device="cpu", results_dir=None, run_log=None),
           printer=lambda s: None)
    assert sys.path == before and "mynets" in sys.modules


def test_the_fingerprint_covers_the_helpers_a_user_model_imports(project):
    from trainguard import models

    models.resolve("mynets:TinyNet", (project,))
    assert results.user_modules(sys.modules["mynets"]) == ["helpers", "mynets"]  # not torch, not the stdlib
    source = results.user_model_source("mynets:TinyNet")
    assert "def width():" in source and "class TinyNet" in source


def test_a_model_path_that_no_longer_resolves_is_an_error_not_a_silent_key():
    with pytest.raises(ConfigError, match="nosuch_module_xyz"):
        results.user_model_source("nosuch_module_xyz:Net")


def test_result_file_names_are_safe_on_every_file_system(tmp_path):
    from trainguard.core.spec import RunSpec, TrainConfig

    spec = RunSpec("mine", "mynets:TinyNet", 0, 1, TrainConfig(), "data", "cpu")
    name = results.ResultStore(tmp_path).path(spec).name
    assert ":" not in name and name.startswith("mynets_TinyNet-seed0-")


def test_the_commit_is_marked_dirty_when_tracked_files_changed(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t"})

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-qm", "one")
    clean = git_commit(tmp_path)
    assert clean != "unknown" and not clean.endswith("+dirty")
    (tmp_path / "a.txt").write_text("2")
    assert git_commit(tmp_path) == f"{clean}+dirty"
    assert git_commit(tmp_path / "..") in ("unknown", git_commit(tmp_path / ".."))  # outside: whatever it is, no crash


def test_importing_trainguard_does_not_touch_the_umask(tmp_path):
    """The umask is read, never set: setting it to 0, even for a moment, races every other thread's file creation."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        def refuse(mask):
            raise AssertionError("os.umask called")
        os.umask = refuse
        from trainguard.core import storage
        storage.atomic_write_text(__import__("pathlib").Path({str(tmp_path / "f.txt")!r}), "x")
        print(oct(storage.file_mode()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    mask = os.umask(0o022)
    os.umask(mask)
    assert int(done.stdout.strip(), 8) == 0o666 & ~mask
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("name", ["TRAINGUARD_CHILD_TIMEOUT", "TRAINGUARD_LOCK_TIMEOUT"])
@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan"])
def test_a_bound_that_is_not_a_positive_number_is_named(monkeypatch, name, value):
    from trainguard.core import storage, watchdog

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"{name}='{value}': expected a positive number of seconds"):
        (watchdog.child_timeout if "CHILD" in name else storage.lock_timeout)()
