"""The dashboard in a real headless browser: the distribution's Chromium (`.ci/run` installs it: apt-get install
chromium), driven by Playwright with that executable (CI cannot download browser builds). The ledger holds real
smoke nights (two passing, one failing against a shifted baseline, each with its report and figures) and the
committed JSON-lines nights, imported."""

import shutil
from pathlib import Path

import pytest

from trainguard import cli
from trainguard.report import dashboard
from trainguard.stores.ledger import open_ledger

ROOT = Path(__file__).resolve().parent.parent


def _night(args: list[str], report: Path) -> None:
    assert cli.main(["run", *args, "--report", str(report)]) in (0, 1)


@pytest.fixture(scope="module")
def site(tmp_path_factory, smoke_runs):
    tmp = tmp_path_factory.mktemp("dashboard")
    ledger = tmp / "ledger.sqlite"
    baselines = smoke_runs.copy_baseline(tmp / "b").parent
    common = ["--profile", "smoke", "--device", "cpu", "--no-replay", "--results-dir", str(smoke_runs.copy(tmp / "results")),
              "--run-log", str(tmp / "runlog.jsonl"), "--ledger", str(ledger)]
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CI", raising=False)
        for night in range(2):  # figures drawn for the second night only (what the click test opens): seconds saved
            figures = [] if night == 1 else ["--no-figures"]
            _night([*common, *figures, "--baselines-dir", str(baselines)], tmp / f"n{night}" / "report.md")
        shifted = tmp / "shifted"  # the same runs against a baseline whose accuracies sit 30 points higher: a FAIL
        shutil.copytree(baselines, shifted)
        curves = shifted / "smoke" / "cpu-seeds.csv"
        lines = curves.read_text().splitlines()
        header = lines[0].split(",")
        column = header.index("test_acc")
        rows = [line.split(",") for line in lines[1:]]
        for row in rows:
            row[column] = f"{float(row[column]) + 30:.6g}"
        curves.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
        _night([*common, "--no-figures", "--baselines-dir", str(shifted)], tmp / "n2" / "report.md")
    assert cli.main(["ledger", "import", str(ROOT / "docs" / "nightly-acceptance"), "--ledger", str(ledger)]) == 0
    out = tmp / "site"
    assert cli.main(["dashboard", "--out", str(out), "--ledger", str(ledger)]) == 0
    return out, open_ledger(ledger)


def _open(page, path: Path):
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def test_the_pages_load_without_console_errors_and_the_charts_hold_every_night_failures_marked(site, page):
    """One load of each page (plotly.js is megabytes to parse): no console error; every trend chart holds one point
    per night; the failing night is marked in the charts (× in the failure colour) and in the table."""
    out, ledger = site
    (night, _), *_ = ledger.nights("smoke", "cpu")
    for path in (out / "regressions.html", out / "nights" / str(night) / "index.html"):
        _open(page, path)
        assert page.errors == [], f"{path.name}: {page.errors}"
    _open(page, out / "index.html")
    page.wait_for_function("document.querySelectorAll('.trend .main-svg').length > 0")
    assert page.errors == []
    points = page.evaluate("""() => Array.from(document.querySelectorAll('.trend')).map((el) => ({
        id: el.id, n: el.data[el.data.length - 1].x.length,
        values: el.data[el.data.length - 1].y.filter((v) => v !== null).length}))""")
    smoke = [p for p in points if p["id"].startswith("smoke-cpu-")]
    ci = [p for p in points if p["id"].startswith("ci-cpu-")]
    assert len(smoke) == 8 and all(p["n"] == p["values"] == 3 for p in smoke)  # 4 models × 2 budgets, 3 nights each
    assert ci and all(p["n"] == len(ledger.nights("ci", "cpu")) for p in ci)
    assert [entry["result"] for _, entry in ledger.nights("smoke", "cpu")] == ["PASS", "PASS", "FAIL"]
    marker = page.evaluate("() => { const el = document.getElementById('smoke-cpu-Baseline1-3');"
                           " const t = el.data[el.data.length - 1]; return [t.marker.color, t.marker.symbol]; }")
    assert marker == [[dashboard.PASS, dashboard.PASS, dashboard.FAIL], ["circle", "circle", "x"]]
    failing = page.locator("#smoke-cpu tr.night.fail")
    assert failing.count() == 1 and "FAIL" in failing.inner_text()
    # it works offline: no request left the file system (no CDN, no server)
    assert page.requests and all(url.startswith(("file://", "data:")) for url in page.requests), page.requests


def test_a_click_on_a_point_opens_that_night_s_report_with_its_figures(site, page):
    out, ledger = site
    nights = ledger.nights("smoke", "cpu")
    _open(page, out / "index.html")
    page.wait_for_function("document.querySelectorAll('.trend .main-svg').length > 0")
    x, y = page.evaluate("""() => { const el = document.getElementById('smoke-cpu-NewModel1-3');
        el.scrollIntoView({block: 'center'});
        const t = el.data[el.data.length - 1], xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
        const box = el.getBoundingClientRect();
        return [box.left + xa._offset + xa.l2p(t.x[1]), box.top + ya._offset + ya.l2p(t.y[1])]; }""")
    page.mouse.move(x - 20, y)
    page.mouse.move(x, y, steps=4)  # plotly finds the point under the pointer on hover, then the click opens it
    page.wait_for_timeout(300)
    with page.expect_navigation():
        page.mouse.click(x, y)
    assert page.url.endswith(f"nights/{nights[1][0]}/index.html")
    assert "trainguard report — profile smoke" in page.inner_text("article.report")
    images = page.evaluate("() => Array.from(document.images).map((i) => [i.getAttribute('src'), i.naturalWidth])")
    assert images and all(width > 0 for _, width in images), images  # the figures, stored with the night
    assert page.errors == []


def test_a_click_on_a_row_opens_that_night_and_an_imported_night_shows_its_record(site, page):
    out, ledger = site
    (first_ci, entry), *_ = ledger.nights("ci", "cpu")
    _open(page, out / "index.html")
    with page.expect_navigation():
        page.locator(f'tr.night[data-night="{first_ci}"] td').nth(1).click()
    assert page.url.endswith(f"nights/{first_ci}/index.html")
    assert "imported from a JSON-lines ledger" in page.inner_text("main") and entry["run_id"] in page.inner_text("pre")


def test_the_regressions_page_lists_the_failing_night_with_what_changed(site, page):
    out, ledger = site
    _open(page, out / "regressions.html")
    text = page.inner_text("main")
    smoke = text[text.index("smoke on cpu"):]
    assert "Baseline1-3 Test Accuracy" in smoke and "REGRESSION (worse than baseline)" in smoke  # the failed checks' words
    failing = [night for night, entry in ledger.nights("smoke", "cpu") if entry["result"] == "FAIL"]
    assert page.locator(f'a[href="nights/{failing[0]}/index.html"]').count() == 1
    assert "nothing recorded changed since the night before" in smoke  # same code, data and versions: the baseline moved


def _charts(out: Path) -> dict:
    """The chart data the site's script plots: group key → its charts, each by title."""
    import json

    raw = (out / "data.js").read_text().removeprefix("window.TRAINGUARD = ").rstrip().removesuffix(";")
    return {group["key"]: {c["title"]: c for c in group["cells"].values()} for group in json.loads(raw)["groups"]}


def test_an_experiment_s_every_recorded_metric_gets_its_charts_and_an_earlier_record_its_first_metric_s_band(tmp_path):
    """Each metric an experiment recorded gets a chart per variant and budget, shaded with the band its night checked;
    a night recorded before every metric's band was kept (its first metric only) still shades that metric. A
    `trainguard guard … check` night (its cells where a profile keeps its models') charts every metric too. Plotting
    itself is the Chromium tests' concern: this reads the chart data."""
    from test_ledger import entry

    ledger = open_ledger(str(tmp_path / "ledger.sqlite"))
    cells = {"nodrop": {"10": {"gap": {"100": 17.0, "101": 19.0}, "test_loss": {"100": 18.0, "101": 20.0}}}}
    earlier = entry("n1", experiments={"mnist": cells}, sources={"mnist": "a" * 64},
                    experiment_bands={"mnist": {"metric": "gap", "nodrop-10": [10.0, 22.0]}})
    later = entry("n2", time="2026-12-02T02:17:00+00:00", experiments={"mnist": cells}, sources={"mnist": "a" * 64},
                  experiment_bands={"mnist": {"gap": {"nodrop-10": [10.5, 22.5]}, "test_loss": {"nodrop-10": [9.0, 23.0]}}})
    guard = entry("g1", profile="mine", cells=cells, sources={"mine": "b" * 64}, bands={"metric": "gap", "nodrop-10": [1, 30]},
                  experiment_bands={"mine": {"gap": {"nodrop-10": [1.0, 30.0]}, "test_loss": {"nodrop-10": [2.0, 31.0]}}})
    for night in (earlier, later, guard):
        ledger.append(night)
    dashboard.build(ledger, tmp_path / "site")
    charts = _charts(tmp_path / "site")
    gap, loss = charts["ci-cpu"]["mnist: nodrop-10 — gap"], charts["ci-cpu"]["mnist: nodrop-10 — Test Loss"]
    assert gap["values"] == [18.0, 18.0] and loss["values"] == [19.0, 19.0]  # each night's mean over its seeds
    assert (gap["low"], gap["high"]) == ([10.0, 10.5], [22.0, 22.5])
    assert (loss["low"], loss["high"]) == ([None, 9.0], [None, 23.0])  # the earlier record kept no band for it
    mine = charts["mine-cpu"]
    assert mine["nodrop-10"]["low"] == [1] and mine["nodrop-10 — Test Loss"]["values"] == [19.0]
    assert (mine["nodrop-10 — Test Loss"]["low"], mine["nodrop-10 — Test Loss"]["high"]) == ([2.0], [31.0])
    assert "Baseline1-10 — Test Accuracy" not in charts["ci-cpu"]  # a profile's models: their checked metric only
