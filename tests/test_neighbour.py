"""The plugin is installed into every pytest run of the environment: it must leave other projects alone,
and its own layers must import only downwards (no cycles)."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The controller's dist mode (workers see their own), printed at the end of the run.
CONFTEST = textwrap.dedent("""
    def pytest_terminal_summary(terminalreporter, config):
        terminalreporter.write_line(f"DIST={config.option.dist}")
""")
UNRELATED = textwrap.dedent("""
    import sys

    def test_no_torch_imported_by_the_plugin():
        assert "torch" not in sys.modules and "scipy" not in sys.modules

    def test_not_grouped(request):
        assert not list(request.node.iter_markers("xdist_group"))
""")


def test_unrelated_project_keeps_dist_load_and_imports_no_torch(pytester):
    pytester.makepyfile(test_unrelated=UNRELATED)
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["DIST=load"])
    assert "trainguard:" not in result.stdout.str()  # no header line where trainguard was not asked for


def test_dist_loadgroup_only_when_asked_for_and_not_given(pytester):
    pytester.makepyfile(test_unrelated=UNRELATED)
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "load", "--tg-profile", "smoke", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["DIST=load"])
    asked = pytester.runpytest_subprocess("-n", "2", "--tg-profile", "smoke", "-p", "no:cacheprovider")
    asked.stdout.fnmatch_lines(["DIST=loadgroup"])  # asked for trainguard, no explicit --dist: one worker per run


def test_help_lists_prefixed_options_and_ini_keys(pytester):
    out = pytester.runpytest_subprocess("--help").stdout.str()
    for name in ("--tg-profile", "--tg-device", "--tg-seeds", "--tg-report", "--tg-shard", "--tg-update-baselines",
                 "tg_profile", "tg_baselines_dir", "tg_results_dir", "tg_report"):
        assert name in out, name
    assert "\n  --profile" not in out and "\n  --device" not in out  # generic names that clash with other plugins


def test_ini_profile_and_report_header(pytester):
    """A project sets its profile in its pytest configuration; the header says what trainguard will run."""
    for module in ("test_cifar10_matrix.py",):
        (pytester.path / module).write_text((ROOT / "tests" / module).read_text())
    pytester.makeini("[pytest]\ntg_profile = smoke\n")
    result = pytester.runpytest_subprocess("-m", "slow", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert "test_cell_within_baseline[NewModel2-3]" in result.stdout.str()  # smoke's budgets are 2 and 3
    header = pytester.runpytest_subprocess("-m", "slow", "--collect-only", "-p", "no:cacheprovider").stdout.str()
    assert "trainguard: profile smoke" in header


def test_bad_ini_value_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\ntg_device = tpu\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*tg_device*tpu*expected auto, cpu, cuda*"])


def test_importing_the_plugin_or_package_loads_no_torch():
    code = "import sys, trainguard, trainguard.plugin, trainguard.cli; print(sorted({'torch', 'scipy', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------- layers

# The layers, lowest first; a module imports only from layers below its own (README's Layout says the same).
LAYERS = [
    # core: the errors every layer raises, the bounds of every wait, what a run is, pure statistics, formats,
    # versions, the registry of check kinds (names only)
    {"errors"},
    {"watchdog"},
    {"trainguard", "storage", "history", "stats", "environment", "registry",
     "models", "models.cifar", "models.mnist", "models._registry"},
    {"spec"},
    # data, verdicts, and the stores (results cache, run log, baselines, night ledger, golden files)
    {"data", "compare", "runlog", "results", "baselines", "progress", "plots", "ledger", "golden"},
    # training engines
    {"engine", "keras_engine"},
    {"overfit", "stacked"},
    {"training"},
    # the runs of one profile
    {"session", "export"},
    # check kinds: the protocol and policy, then one module per kind
    {"checks"},
    {"checks.baseline", "checks.published", "checks.mnist"},
    {"checks.conclusions", "trend"},
    {"replay"},
    {"report", "dashboard", "mlflow_export", "night"},
    {"cluster"},  # the execute stage on Ray
    # the library's entry points
    {"calibration", "selftest", "api"},
    {"options"},
    # front ends
    {"plugin", "cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
PACKAGES = {"trainguard": ROOT / "harness", "trainguard.models": ROOT / "models",
            "trainguard.checks": ROOT / "harness" / "checks"}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[_short(name)] = path
    return modules


def _short(name: str) -> str:
    return name if name == "trainguard" else name.removeprefix("trainguard.")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every package-internal module ``name`` imports, at module level or inside functions."""
    full = name if name == "trainguard" else f"trainguard.{name}"
    package = full if path.stem == "__init__" else full.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            elif node.module and node.module.split(".")[0] == "trainguard":
                target = node.module
            else:
                continue
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            found |= {_short(c) for c in candidates if _short(c) in modules}
        elif isinstance(node, ast.Import):
            found |= {_short(a.name) for a in node.names if a.name.startswith("trainguard.") and _short(a.name) in modules}
    found.discard(name)
    return found - {"trainguard"}  # the package's own __init__ imports nothing


def test_every_module_has_a_layer():
    assert set(_modules()) == set(RANK), "add the new module to LAYERS"


@pytest.mark.parametrize("name", sorted(RANK))
def test_imports_point_down_the_layers(name):
    modules = _modules()
    upward = [dep for dep in _imports(name, modules[name], modules)
              if RANK[dep] > RANK[name] or (RANK[dep] == RANK[name] and not name.startswith("models"))]
    assert not upward, f"{name} (layer {RANK[name]}) imports {upward} (not below it)"


def test_an_unrelated_selftest_marker_is_left_alone(pytester):
    """Another project's own `selftest` marker: its test runs (by file and by node id), as without trainguard."""
    pytester.makepyfile(test_theirs=textwrap.dedent("""
        import pytest

        @pytest.mark.selftest
        def test_their_own_selftest():
            assert True
    """))
    pytester.makeini("[pytest]\nmarkers =\n    selftest: their own marker\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "deselected" not in result.stdout.str()
    by_id = pytester.runpytest_subprocess("test_theirs.py::test_their_own_selftest", "-p", "no:cacheprovider")
    by_id.assert_outcomes(passed=1)


def test_python_m_trainguard_is_the_command():
    out = subprocess.run([sys.executable, "-m", "trainguard", "--version"], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and out.stdout.startswith("trainguard ")


README_LAYERS = ("core", "profile", "stores", "engines", "runs", "checks", "replay", "library", "front ends")


def _readme_layers() -> list[set[str]]:
    """The README's Layout block, as LAYERS: one set per layer, "→" starting the next one."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Layout"):].split("```")[1]
    layers = []
    for line in block.splitlines():
        label = next((name for name in README_LAYERS if line.startswith(name + " ")), None)
        if label is None:
            continue
        listing = line[len(label):].strip().split("   ")[0]
        for part in listing.split("→"):
            names = {name.split(" (")[0].strip() for name in part.split(",") if name.strip()}
            if "models/" in names:
                names = names - {"models/"} | {"trainguard", "models", "models.cifar", "models.mnist", "models._registry"}
            layers.append(names)
    return layers


def test_the_readme_layout_is_the_layer_list():
    assert _readme_layers() == LAYERS
