"""``trainguard dashboard --out DIR``: the ledger of nights as a static site, in the spirit of asv's published one.

Self-contained (no CDN, no server): it opens from the file system and from GitHub Pages alike. The charting
library (plotly.js, from the ``dashboard`` extra's plotly package) is copied into the site; the data travel as a
script (``data.js``), since a page opened from the file system may not fetch files.

- ``index.html``: per profile and device class, every cell's checked statistic over the nights with the baseline
  band shaded and failing nights marked (hover for values, drag to zoom, click a point for that night's report);
  training speed and peak memory per model; the replay's verdict per night; the table of nights (commit,
  versions, hardware, result, flags), each row opening that night's report;
- ``regressions.html``: every failed check, drift or speed flag and changed golden, with what changed since the
  night before;
- ``nights/<id>/index.html``: the night's report rendered as HTML with its figures (stored with the night in the
  ledger), or its record where the night was imported from a JSON-lines ledger without one.

The site is published, and what it shows comes from a ledger others can write (a shared database, an imported file,
a history branch). So: the ledger hands over only records that pass its validation (stores/night_record.py), a
night's folder is named by the database's own integer id (never a value from the record), and every value written
into the HTML goes through :func:`_e` (text and attribute values alike) or :func:`_token` (class names); every
string the charting library renders (hover texts, titles, trace names) is escaped before it enters ``data.js``.
The reports themselves are rendered from markdown with raw HTML off and unsafe link schemes refused.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import statistics
from pathlib import Path

from ..stores.golden import IDENTICAL, MISSING, NOISE
from ..stores.ledger import Ledger
from ..stores.night_record import experiment_bands_of
from ..core.storage import ConfigError, atomic_write_bytes, atomic_write_text

FAIL, PASS = "#c0392b", "#2471a3"


def _e(value) -> str:
    """The one escaping rule for every value the site writes into HTML, as text or inside a quoted attribute."""
    return html.escape(str(value), quote=True)


def _chart_text(value) -> str:
    """A string the charting library renders (it reads a subset of HTML: tags and entities, not quotes): its
    markup characters escaped."""
    return html.escape(str(value), quote=False)


def _token(value) -> str:
    """A CSS class name from a value: lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]", "", str(value).lower())[:40] or "unknown"
QUIET_REPLAY = (IDENTICAL, NOISE, MISSING)  # the replay's verdicts that are no regression
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #222; }
header { background: #1f2d3a; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: baseline; }
header a { color: #cde; text-decoration: none; } header h1 { font-size: 18px; margin: 0; }
main { padding: 12px 24px 40px; max-width: 1400px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 8px; }
.chart { height: 300px; border: 1px solid #ddd; }
.chart.empty { height: auto; padding: 1em; color: #555; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
tr.night { cursor: pointer; } tr.night:hover { background: #eef4fa; }
.FAIL, .fail { color: #c0392b; font-weight: 600; } .PASS { color: #1e8449; } .flag { color: #b9770e; }
.replay-cell { font-size: 12px; } .identical { background: #d5f5e3; } .numerics { background: #fcf3cf; }
.changed, .evaluation, .cannot { background: #f5b7b1; } .no, .missing { background: #eee; }
.report img { max-width: 100%; } .report table { font-size: 13px; } code { background: #f4f4f4; }
"""
SCRIPT = r"""
(function () {
  const data = window.TRAINGUARD;
  const open = (id) => { window.location.href = 'nights/' + id + '/index.html'; };
  for (const group of data.groups) {
    for (const [cell, s] of Object.entries(group.cells)) {
      const el = document.getElementById(group.key + '-' + cell);
      if (!el) continue;
      const traces = [];
      if (s.low.some((v) => v !== null)) {
        traces.push({x: group.x, y: s.low, mode: 'lines', line: {width: 0}, hoverinfo: 'skip', showlegend: false, connectgaps: true});
        traces.push({x: group.x, y: s.high, mode: 'lines', line: {width: 0}, fill: 'tonexty', fillcolor: 'rgba(36,113,163,0.15)',
                     name: 'baseline band', hoverinfo: 'skip', connectgaps: true});
      }
      const label = s.label || group.metric_label;  // a declared experiment's chart: its own metric
      traces.push({x: group.x, y: s.values, mode: 'lines+markers', name: label,
                   customdata: group.nights.map((n) => n.id),
                   text: group.nights.map((n, i) => n.time + '<br>' + n.commit + ' · ' + n.result),
                   hovertemplate: '%{text}<br>' + label + ' %{y:.4f}<extra></extra>',
                   marker: {size: 9, color: group.nights.map((n) => n.result === 'PASS' ? data.colors.pass : data.colors.fail),
                            symbol: group.nights.map((n) => n.result === 'PASS' ? 'circle' : 'x')},
                   line: {color: '#7f8c8d'}});
      Plotly.newPlot(el, traces, {title: {text: s.title, font: {size: 14}, x: 0.01, xanchor: 'left'},  // clear of the tool bar
                                  margin: {l: 60, r: 10, t: 36, b: 48},
                                  xaxis: {title: {text: 'night'}}, yaxis: {title: {text: label}}, showlegend: false},
                     {displaylogo: false, responsive: true});
      el.on('plotly_click', (event) => { const p = event.points.find((q) => q.customdata !== undefined); if (p) open(p.customdata); });
    }
    for (const [what, label] of [['epoch_seconds', 'seconds per epoch'], ['peak_memory_mb', 'peak memory (MiB)']]) {
      const el = document.getElementById(group.key + '-' + what);
      if (!el) continue;
      const traces = Object.entries(group.speed).map(([model, s]) => ({x: group.x, y: s[what], mode: 'lines+markers', name: s.name,
                     customdata: group.nights.map((n) => n.id), connectgaps: false}));
      if (traces.every((t) => (t.y || []).every((v) => v === null || v === undefined))) {  // an empty chart says nothing
        el.className += ' empty';
        el.textContent = 'No ' + label + ' recorded in these nights.';
        continue;
      }
      Plotly.newPlot(el, traces, {title: {text: label, font: {size: 14}, x: 0.01, xanchor: 'left'},
                                  margin: {l: 60, r: 10, t: 36, b: 48},
                                  xaxis: {title: {text: 'night'}}}, {displaylogo: false, responsive: true});
      el.on('plotly_click', (event) => open(event.points[0].customdata));
    }
  }
  for (const row of document.querySelectorAll('tr.night')) {
    row.addEventListener('click', () => open(row.dataset.night));
  }
})();
"""


def build(ledger: Ledger, out: Path) -> list[Path]:
    """Write the site for every profile and device class in ``ledger`` into ``out``; the pages written."""
    out = Path(out)
    groups = [_group(ledger, profile, device_class) for profile, device_class in ledger.profiles()]
    groups = [group for group in groups if group["nights"]]  # a class whose every record was refused
    if not groups:
        raise ConfigError(f"ledger {ledger.where()} holds no nights: nothing to show (run a night, or `trainguard ledger "
                          f"import` a JSON-lines ledger)")
    _assets(out)
    atomic_write_text(out / "data.js", "window.TRAINGUARD = " + json.dumps(
        {"groups": [g["chart"] for g in groups], "colors": {"pass": PASS, "fail": FAIL}}) + ";\n")
    refused = _refused([publishable(r.replace(f"ledger {ledger.where()}", "the ledger")) for r in ledger.refused])
    pages = [_page(out / "index.html", "trainguard — nights", refused + "".join(_group_section(g) for g in groups),
                   charts=True),
             _page(out / "regressions.html", "trainguard — regressions", _regressions(groups))]
    for group in groups:
        for night in group["nights"]:
            pages.append(_night_page(ledger, out, group, night))
    return pages


# ------------------------------------------------------------------------------------ data per group

def _group(ledger: Ledger, profile: str, device_class: str) -> dict:
    nights = [{**entry, "id": int(night)} for night, entry in ledger.nights(profile, device_class)]
    metric = next((n["bands"]["metric"] for n in reversed(nights) if n.get("bands")), "test_acc")
    key = f"{profile}-{device_class}".replace(".", "_")
    cells = sorted({f"{m}-{b}" for n in nights for m, budgets in n.get("cells", {}).items() for b in budgets},
                   key=_cell_order)
    models = sorted({m for n in nights for m in n.get("speed", {})})
    # every string plotly renders (it reads a subset of HTML in texts, titles and names) escaped here
    chart = {"key": key, "metric": metric, "metric_label": _chart_text(_label(metric)),
             "x": list(range(1, len(nights) + 1)),
             "nights": [{"id": n["id"], "time": _chart_text(n.get("time", "?")[:16].replace("T", " ")),
                         "commit": _chart_text(n.get("commit", "?")), "result": _chart_text(n.get("result", "?"))}
                        for n in nights],
             "cells": {**{cell: {**_cell_series(nights, cell, metric), "title": _chart_text(cell)} for cell in cells},
                       **_guard_series(nights, profile, cells, metric), **_experiment_series(nights)},
             "speed": {model: {"name": _chart_text(model), **{what: [n.get("speed", {}).get(model, {}).get(what) for n in nights]
                                                    for what in ("epoch_seconds", "peak_memory_mb")}} for model in models}}
    return {"profile": profile, "device_class": device_class, "key": key, "nights": nights, "chart": chart}


def _cell_order(cell: str):
    model, _, budget = cell.rpartition("-")
    return model, int(budget) if budget.isdigit() else 0


def _series(nights: list[dict], value_of, band_of) -> dict:
    """One chart's points: per night, the mean over its seeds (``value_of(night)``: seed → value, or None) and the band
    its night checked (``band_of(night)``: [low, high], or None)."""
    values, low, high = [], [], []
    for night in nights:
        per_seed, band = value_of(night), band_of(night)
        values.append(statistics.fmean(per_seed.values()) if per_seed else None)
        low.append(band[0] if band else None)
        high.append(band[1] if band else None)
    return {"values": values, "low": low, "high": high}


def _cell_series(nights: list[dict], cell: str, metric: str) -> dict:
    model, _, budget = cell.rpartition("-")
    return _series(nights, lambda n: n.get("cells", {}).get(model, {}).get(budget, {}).get(metric),
                   lambda n: (n.get("bands") or {}).get(cell))


def _metrics_of(cells: list[dict]) -> list[str]:
    """Every metric the cells (budget → metric → seed → value) hold, in the order first recorded."""
    return list(dict.fromkeys(metric for budgets in cells for metrics in budgets.values() for metric in metrics))


def _guard_series(nights: list[dict], profile: str, cells: list[str], charted: str) -> dict:
    """A ``trainguard guard … check`` night keeps its experiment's cells where a profile keeps its models': besides the
    metric charted above, a chart of every other metric it recorded, shaded with the band of that metric where the
    night kept it ("experiment_bands"). A profile's models chart their checked metric only. Chart ids are generated
    ("metric-N")."""
    if not nights or any(set(n.get("sources") or {}) != {profile} for n in nights):
        return {}
    series = {}
    for metric in _metrics_of([budgets for n in nights for budgets in n.get("cells", {}).values()]):
        if metric == charted:
            continue
        for cell in cells:
            model, _, budget = cell.rpartition("-")
            series[f"metric-{len(series)}"] = {
                **_series(nights, lambda n: n.get("cells", {}).get(model, {}).get(budget, {}).get(metric),
                          lambda n: experiment_bands_of(n, profile).get(metric, {}).get(cell)),
                "title": _chart_text(f"{cell} — {_label(metric)}"), "label": _chart_text(_label(metric))}
    return series


def _experiment_series(nights: list[dict]) -> dict:
    """A profile's declared experiments over its nights (their cells are kept under "experiments"): per experiment,
    each metric it recorded, variant and budget, the night's mean over its seeds, with the band its night checked
    shaded (a night recorded before every metric's band was kept shades its first metric only). Chart ids are
    generated ("experiment-N"), never taken from the record."""
    series = {}
    for name in sorted({name for night in nights for name in night.get("experiments", {})}):
        variants = [n.get("experiments", {}).get(name, {}) for n in nights]
        cells = sorted({f"{variant}-{budget}" for found in variants for variant, budgets in found.items()
                        for budget in budgets}, key=_cell_order)
        for metric in _metrics_of([budgets for found in variants for budgets in found.values()]):
            for cell in cells:
                variant, _, budget = cell.rpartition("-")
                series[f"experiment-{len(series)}"] = {
                    **_series(nights,
                              lambda n: n.get("experiments", {}).get(name, {}).get(variant, {}).get(budget, {}).get(metric),
                              lambda n: experiment_bands_of(n, name).get(metric, {}).get(cell)),
                    "title": _chart_text(f"{name}: {cell} — {_label(metric)}"), "label": _chart_text(_label(metric))}
    return series


def _label(metric: str) -> str:
    from ..core.spec import METRIC_LABELS

    return METRIC_LABELS.get(metric, metric)


# ------------------------------------------------------------------------------------ pages

def _assets(out: Path) -> None:
    try:
        from plotly.offline import get_plotlyjs
    except ModuleNotFoundError:
        raise ConfigError("trainguard dashboard needs the charting library: pip install 'trainguard[dashboard]'") from None
    (out / "assets").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "assets" / "plotly.min.js", get_plotlyjs())
    atomic_write_text(out / "assets" / "dashboard.js", SCRIPT)
    atomic_write_text(out / "assets" / "style.css", STYLE)


def _page(path: Path, title: str, body: str, charts: bool = False, depth: int = 0) -> Path:
    up = "../" * depth
    scripts = (f'<script src="{up}assets/plotly.min.js"></script><script src="{up}data.js"></script>'
               f'<script src="{up}assets/dashboard.js" defer></script>') if charts else ""
    atomic_write_text(path, f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{up}assets/style.css"></head>
<body><header><h1>trainguard</h1><a href="{up}index.html">nights</a><a href="{up}regressions.html">regressions</a></header>
<main>{body}</main>{scripts}</body></html>
""")
    return path


def _what_charts(chart: dict, nights: list[dict]) -> str:
    """What a group's trend charts show: the models' checked metric, and each declared experiment's metrics."""
    experiments = "each metric a declared experiment recorded (the mean over its check seeds)"
    if not any(n.get("cells") for n in nights):  # a profile of experiments alone
        return experiments
    return f"the checked {_e(_label(chart['metric']))} (mean over the night's seeds) or {experiments}"


def _group_section(group: dict) -> str:
    chart, nights = group["chart"], group["nights"]
    last = nights[-1]
    cells = "".join(f'<div class="chart trend" id="{_e(group["key"])}-{_e(cell)}" data-cell="{_e(cell)}"></div>'
                    for cell in chart["cells"])
    speed = "".join(f'<div class="chart speed" id="{_e(group["key"])}-{what}"></div>' for what in ("epoch_seconds", "peak_memory_mb"))
    return (f'<section id="{_e(group["key"])}"><h2>{_e(group["profile"])} on {_e(group["device_class"])}</h2>'
            f'<p>{len(nights)} night(s); the last, {_e(str(last.get("time", "?"))[:16])}: '
            f'<span class="{_result_class(last.get("result"))}">{_e(last.get("result", "?"))}</span>. Each chart: '
            f'{_what_charts(chart, nights)} with the baseline band shaded; × marks a night that failed. Click a point for '
            f'that night\'s report.</p>'
            f'<h3>Cells</h3><div class="grid">{cells}</div><h3>Speed and memory</h3><div class="grid">{speed}</div>'
            f'<h3>Replay</h3>{_replay_table(nights)}<h3>Nights</h3>{_nights_table(nights)}</section>')


# What a report says for its reader on the machine that ran it, and a published page must not: absolute paths (the
# interpreter, the data and result folders: user names, mount points) and the Ray hosts that trained the runs.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/-])(?:/[\w.@+~-]+){2,}/?")
_RAY_HOST = re.compile(r"(run\(s\) trained on )[^,;\n|]+")


def publishable(text: str) -> str:
    """``text`` as the published site shows it: every absolute path cut to its last part (``…/python3``), every
    Ray host named as a cluster node. What it cannot see: a secret or a name written in any other form."""
    text = _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
    return _RAY_HOST.sub(lambda m: m.group(1) + "a cluster node", text)


def _result_class(result) -> str:
    return {"PASS": "PASS", "FAIL": "FAIL"}.get(result, "unknown")


def _refused(reasons: list[str]) -> str:
    if not reasons:
        return ""
    items = "".join(f"<li>{_e(reason)}</li>" for reason in reasons[:20])
    more = f"<li>… and {len(reasons) - 20} more</li>" if len(reasons) > 20 else ""
    return (f'<section class="refused"><h2>{len(reasons)} record(s) of the ledger refused</h2><p>Not shown: they are '
            f'not valid night records (written into the database by something other than trainguard?).</p>'
            f'<ul>{items}{more}</ul></section>')


def _replay_table(nights: list[dict]) -> str:
    names = sorted({name for n in nights for name in n.get("replay", {})})
    if not names:
        return "<p>No replay recorded in these nights.</p>"
    head = "".join(f"<th>{_e(name)}</th>" for name in names)
    rows = []
    for night in nights:
        cells = []
        for name in names:
            outcome = night.get("replay", {}).get(name)
            status = outcome.get("status", "?") if outcome else "—"
            title = outcome.get("message", "") if outcome else ""
            kind = _token(status.split()[0]) if outcome and status.split() else "missing"
            cells.append(f'<td class="replay-cell {kind}" title="{_e(title)}">{_e(status)}</td>')
        rows.append(f'<tr><td>{_e(str(night.get("time", "?"))[:16])}</td>{"".join(cells)}</tr>')
    return f'<table class="replay"><tr><th>night</th>{head}</tr>{"".join(rows)}</table>'


def _night_link(night: dict) -> str:
    """The relative address of a night's page: built from the database's integer id only."""
    return f"nights/{int(night['id'])}/index.html"


def _nights_table(nights: list[dict]) -> str:
    rows = []
    for night in reversed(nights):
        versions = night.get("versions", {})
        shown = ", ".join(f"{k} {versions[k]}" for k in ("torch", "numpy", "isa", "torch_threads") if k in versions)
        flags = len(night.get("flags", [])) + len(night.get("failed", []))
        failing = "fail" if night.get("result") == "FAIL" else ""
        rows.append(f'<tr class="night {failing}" data-night="{int(night["id"])}">'
                    f'<td><a href="{_night_link(night)}">{_e(str(night.get("time", "?"))[:16])}</a></td>'
                    f'<td>{_e(night.get("commit", "?"))}</td><td>{_e(shown)}</td>'
                    f'<td>{_e(night.get("hardware", "?"))}</td>'
                    f'<td class="{_result_class(night.get("result"))}">{_e(night.get("result", "?"))}</td><td>{flags}</td></tr>')
    return ("<table class=\"nights\"><tr><th>night</th><th>commit</th><th>versions</th><th>hardware</th><th>result</th>"
            f"<th>failed + flags</th></tr>{''.join(rows)}</table>")


def _problems(night: dict) -> list[str]:
    problems = ([f'<li class="fail">{_e(m)}</li>' for m in night.get("failures", [])]
                or [f'<li class="fail">failed: {_e(s)}</li>' for s in night.get("failed", [])])
    problems += [f'<li class="flag">{_e(m)}</li>' for m in night.get("flags", [])]
    problems += [f'<li class="fail">golden {_e(name)}: {_e(o.get("message", ""))}</li>'
                 for name, o in night.get("replay", {}).items() if o.get("status") not in QUIET_REPLAY]
    return problems


def _regressions(groups: list[dict]) -> str:
    from ..checks.trend import likely_causes

    sections = []
    for group in groups:
        items, previous = [], None
        for night in group["nights"]:
            problems = _problems(night)
            if problems:
                causes = likely_causes(previous, night) if previous else []
                since = ("what changed since the night before: " + _e("; ".join(causes)) if causes else
                         "nothing recorded changed since the night before (versions, data, training, hardware)")
                items.append(f'<h3><a href="{_night_link(night)}">{_e(str(night.get("time"))[:16])}</a> '
                             f'— commit {_e(night.get("commit"))}</h3><ul>{"".join(problems)}</ul>'
                             f'<p>{since}</p>')
            previous = night
        body = "".join(items) or "<p>No failed check, flag or changed golden in these nights.</p>"
        sections.append(f'<section><h2>{_e(group["profile"])} on {_e(group["device_class"])}</h2>{body}</section>')
    return "".join(sections)


def _night_page(ledger: Ledger, out: Path, group: dict, night: dict) -> Path:
    folder = out / "nights" / str(int(night["id"]))
    folder.mkdir(parents=True, exist_ok=True)
    files = ledger.artifacts(night["id"])  # names already plain file names (the ledger skips any other)
    for name, content in files.items():
        if name.endswith(".png"):
            atomic_write_bytes(folder / name, content)
    if "report.md" in files:
        report = publishable(files["report.md"].decode("utf-8", errors="replace"))
        body = f'<article class="report">{_markdown(report)}</article>'
    else:
        record = {k: v for k, v in night.items() if k != "id"}
        body = (f"<p>This night's report is not in the ledger (imported from a JSON-lines ledger, or pruned by "
                f"<code>trainguard ledger prune</code>): its record follows.</p>"
                f"<pre>{_e(publishable(json.dumps(record, indent=1, sort_keys=True)))}</pre>")
    title = f"{group['profile']} on {group['device_class']}, {str(night.get('time', '?'))[:16]} — {night.get('result', '?')}"
    return _page(folder / "index.html", title, f"<h2>{_e(title)}</h2>{body}", depth=2)


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def site_size(out: Path) -> int:
    return sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())


def clean(out: Path) -> None:
    """Remove an earlier site's night pages (ids change when a ledger is rebuilt)."""
    shutil.rmtree(Path(out) / "nights", ignore_errors=True)
