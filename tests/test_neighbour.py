"""The plugin is installed into every pytest run of the environment: it must leave other projects alone,
and its own layers must import only downwards (no cycles)."""

import ast
import re
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


def test_importing_the_report_s_experiments_loads_no_torch():
    """A profile that declares them lists its cases without torch (their faults name the self-test's injections
    without importing the engine they patch)."""
    code = ("import sys, trainguard.experiments.cifar_models, trainguard.experiments.mnist_overfit; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------- layers

# The layers, lowest first: each is a folder of the package (``front ends``: the modules at its top), and a module
# imports only from its own layer (without cycles) and the layers below (README's Layout says the same).
LAYERS = ["models", "core", "stores", "engines", "runs", "checks", "replay", "report", "night", "audit", "experiments",
          "front ends"]
RANK = {name: rank for rank, name in enumerate(LAYERS)}
HARNESS = ROOT / "harness"


def _modules() -> dict[str, tuple[str, Path]]:
    """Every module of the package: its name below ``trainguard`` → (its layer, its file)."""
    modules = {}
    for path in HARNESS.rglob("*.py"):
        parts = path.relative_to(HARNESS).with_suffix("").parts
        layer = parts[0] if len(parts) > 1 else "front ends"
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "trainguard"
        modules[name] = (layer, path)
    for path in (ROOT / "models").glob("*.py"):
        modules["models" if path.stem == "__init__" else f"models.{path.stem}"] = ("models", path)
    return modules


def _short(name: str) -> str:
    return name if name == "trainguard" else name.removeprefix("trainguard.")


def _imports(name: str, path: Path, modules) -> set[str]:
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
    # a subpackage's own __init__ (its docstring; `checks`: the protocol) is no edge of the graph unless imported
    return found - {"trainguard"}


def test_every_folder_is_a_layer():
    folders = {p.name for p in HARNESS.iterdir() if (p / "__init__.py").is_file()}
    assert folders | {"models", "front ends"} == set(LAYERS), "add the new folder to LAYERS (and README's Layout)"
    tops = sorted(p.stem for p in HARNESS.glob("*.py") if not p.stem.startswith("__"))
    assert len(tops) <= 5, f"the package's top holds the front ends only, not {tops}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_imports_point_down_the_layers(name):
    modules = _modules()
    layer, path = modules[name]
    upward = [dep for dep in _imports(name, path, modules) if RANK[modules[dep][0]] > RANK[layer]]
    assert not upward, f"{name} (layer {layer}) imports {upward} (above it)"


def test_no_cycle_inside_a_layer():
    modules = _modules()
    graph = {name: {d for d in _imports(name, path, modules) if modules[d][0] == layer}
             for name, (layer, path) in modules.items()}
    done, stack = set(), []

    def visit(name):
        if name in stack:
            raise AssertionError(f"import cycle inside layer {modules[name][0]}: {' → '.join(stack[stack.index(name):] + [name])}")
        if name in done:
            return
        stack.append(name)
        for dep in graph[name]:
            visit(dep)
        stack.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


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


def _readme_layers() -> list[str]:
    """The README's Layout block: the layer named at the start of each of its lines, in order."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Layout"):].split("```")[1]
    return [name for line in block.splitlines() for name in LAYERS if line.startswith(name.replace(" ", "_") + " ")
            or line.startswith(f"{name}/ ") or (name == "front ends" and line.startswith("front ends "))]


def test_the_readme_layout_is_the_layer_list():
    assert _readme_layers() == LAYERS


@pytest.mark.parametrize("old, new", [("trainguard.compare", "trainguard.core.compare"),
                                      ("trainguard.session", "trainguard.runs.matrix"),
                                      ("trainguard.cluster", "trainguard.night.cluster"),
                                      ("trainguard.engines.keras_engine", "trainguard.experiments.mnist_keras")])
def test_an_import_path_from_before_the_folders_still_imports_the_same_module_with_a_warning(old, new):
    code = (f"import importlib, warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            f"try:\n    importlib.import_module({old!r})\nexcept DeprecationWarning as w:\n    print(w)\n"
            f"warnings.simplefilter('ignore')\nprint(importlib.import_module({old!r}) is importlib.import_module({new!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.stdout.splitlines() == [f"{old} moved to {new}: import it from there (the old path goes away in a "
                                       f"later release)", "True"], out.stderr


def test_a_name_of_a_module_that_became_a_package_still_resolves_with_a_warning():
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from trainguard.report import write_report\nfrom trainguard.night import LocalExecutor\n"
            "from trainguard.replay import replay\nprint(write_report.__module__, LocalExecutor.__module__, replay.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.stdout.split() == ["trainguard.report.markdown", "trainguard.night.execute", "trainguard.replay.golden_runs"]
    for old in ("trainguard.report.write_report", "trainguard.night.LocalExecutor", "trainguard.replay.replay"):
        assert f"DeprecationWarning: {old} moved to" in out.stderr


def test_no_class_over_200_lines_and_no_function_over_60():
    """Small units that one reading holds: the limits the package was reshaped to (a longer one is split, not
    allowed for)."""
    long = []
    for path in [*HARNESS.rglob("*.py"), *(ROOT / "models").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                limit = 200 if isinstance(node, ast.ClassDef) else 60
                if node.end_lineno - node.lineno + 1 > limit:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, long


def test_only_the_experiments_and_the_data_store_name_the_reports_data_sets_and_frameworks():
    """The report's experiments are plug-ins: outside their own modules (experiments/) and the data store that loads
    the data sets, no module names them, so nothing else is a special case of them. Sees names in the package's
    Python files (code, comments, strings); not the built-in profiles' TOML or the docs, which may name them."""
    pattern = re.compile(r"mnist|keras|cifar", re.IGNORECASE)
    allowed = {HARNESS / "stores" / "data.py"}
    naming = sorted(str(path.relative_to(HARNESS)) for path in HARNESS.rglob("*.py")
                    if pattern.search(path.read_text()) and path not in allowed
                    and path.relative_to(HARNESS).parts[0] != "experiments")
    assert not naming, naming
