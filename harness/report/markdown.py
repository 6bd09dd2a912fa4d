"""Markdown report: verdicts + histories → tables rendered with pandas + tabulate. Pure rendering."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.compare import Verdict
from ..core.spec import METRIC_LABELS, METRICS
from ..core.storage import atomic_write_text


def markdown_table(frame: pd.DataFrame) -> str:
    """A table as every report of trainguard prints one (values as given: no number reformatting)."""
    return frame.to_markdown(index=False, disable_numparse=True)


def _num(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if metric.endswith("loss") else f"{value:.2f}"


SHORT = {"train_loss": "loss", "train_acc": "train acc", "test_acc": "test acc"}


def _delta(value: float, metric: str) -> str:
    return f"{value:+.4f}" if metric.endswith("loss") else f"{value:+.2f}"


def results_table(rows: list[dict]) -> pd.DataFrame:
    """One row per model: the final-epoch metrics the course report prints."""
    metrics = [m for m in (*METRICS, "val_acc") if rows and m in rows[0]]
    return pd.DataFrame.from_records([{"Model": row["model"], **{METRIC_LABELS[m]: _num(row[m], m) for m in metrics}}
                                      for row in rows])


def baseline_table(budget: int, verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per model × checked metric: the checked value, the derived band, the difference,
    the smallest shift the check catches (MDE) and the verdict."""
    records = []
    for v in verdicts:
        if v.check != "baseline" or v.budget != budget or v.metric is None or v.expected is None:
            continue
        records.append({"Model": v.model, "Metric": METRIC_LABELS.get(v.metric, v.metric),
                        "Measured": _num(v.measured, v.metric),
                        "Band": f"{_num(v.expected - v.allowed, v.metric)} … {_num(v.expected + v.allowed, v.metric)}",
                        "Δ": _delta(v.measured - v.expected, v.metric),
                        "MDE": _num(v.mde, v.metric) if v.mde is not None else "—",
                        "Verdict": "pass" if v.passed else "**FAIL**"})
    return pd.DataFrame.from_records(records)


def published_table(budget: int, rows: list[dict], published: dict) -> pd.DataFrame:
    records = []
    for row in rows:
        out = {"Model": row["model"]}
        for metric in METRICS:
            label, pub = METRIC_LABELS[metric], published.get((row["model"], budget, metric))
            out[label] = _num(row[metric], metric)
            out[f"{label} published"] = _num(pub, metric)
            out[f"Δ {SHORT[metric]}"] = _delta(row[metric] - pub, metric) if pub is not None else "—"
        records.append(out)
    return pd.DataFrame.from_records(records)


def changes_table(budgets: tuple[int, ...], models: tuple[str, ...], old: dict, new: dict) -> pd.DataFrame:
    """Per model and budget: each metric then → now, and the change. ``old``/``new``: model → History."""
    records = []
    for model in models:
        for budget in budgets:
            before, after = old.get(model), new.get(model)
            out = {"Model": model, "Epochs": str(budget)}
            for metric in METRICS:
                a = before.at(budget).metric(metric) if before and len(before.epochs) >= budget else None
                b = after.at(budget).metric(metric) if after and len(after.epochs) >= budget else None
                out[METRIC_LABELS[metric]] = f"{_num(a, metric)} → {_num(b, metric)}"
                out[f"Δ {SHORT[metric]}"] = _delta(b - a, metric) if a is not None and b is not None else "—"
            records.append(out)
    return pd.DataFrame.from_records(records)


def changes_section(source: str, budgets, models, old: dict, new: dict) -> str:
    return "\n".join([f"## Changes since {source}", "",
                      "Same profile and seed; earlier value → this run's value, and the change:", "",
                      markdown_table(changes_table(tuple(budgets), tuple(models), old, new)), ""])


def _grouped(verdicts: list[Verdict]) -> list[Verdict]:
    """The checks in judging order, except that a declared experiment's band checks (judged budget by budget across
    experiments) stand together per experiment and variant: ``NAME-VARIANT-10`` beside ``NAME-VARIANT-20``."""
    import re

    kinds = list(dict.fromkeys(v.check for v in verdicts))

    def key(v: Verdict):
        cell = re.fullmatch(r"(.+)-\d+", v.subject) if v.check == "experiment" else None
        return kinds.index(v.check), cell.group(1) if cell else ""

    return sorted(verdicts, key=key)


def render(title: str, environment: dict, budgets: tuple[int, ...], rows_by_budget: dict[int, list[dict]],
           verdicts: list[Verdict], published: dict, notes: list[str] = (),
           published_note: str = "reference", extra_sections: list[str] = (), statistics: dict | None = None,
           lead_sections: list[str] = (), timing_only: bool = False) -> str:
    """The report: the result line, the lead sections (the replay), the environment and notes, a section per
    budget, the other checks, how the bands were derived, the extra sections, and every failure again."""
    failed = [v for v in verdicts if not v.passed]
    lines = [f"# {title}", "", result_line(verdicts, failed, timing_only), "", *lead_sections,
             markdown_table(pd.DataFrame({"": list(environment), "value": [str(v) for v in environment.values()]})), ""]
    for note in notes:
        lines += [f"> {note}", ""]
    for budget in budgets:
        if rows_by_budget.get(budget):
            lines += budget_section(budget, rows_by_budget[budget], verdicts, published, published_note, statistics)
    other = _grouped([v for v in verdicts if (v.check != "baseline" or v.expected is None) and v.check != "replay"])
    if other:
        lines += ["## Checks", "", markdown_table(pd.DataFrame({"check": [v.subject for v in other],
                                                       "verdict": ["pass" if v.passed else "**FAIL**" for v in other],
                                                       "detail": [v.message for v in other]})), ""]
    if statistics:
        lines += ["## Statistics", "", *[f"- {line}" for line in statistics["lines"]], ""]
    lines += list(extra_sections)
    if failed:
        lines += ["## Failures", "", *[f"- {v.message}" for v in failed], ""]
    return "\n".join(lines)


def result_line(verdicts: list[Verdict], failed: list[Verdict], timing_only: bool) -> str:
    if verdicts:
        return (f"**Result: {'FAIL' if failed else 'PASS'}** — {len(verdicts) - len(failed)} of {len(verdicts)} "
                f"checks passed.")
    if timing_only:
        return "**Result: TIMING ONLY** — the profile asks for no check; read the timings."
    return "**Result: NOTHING CHECKED** — no check compared anything; see the notes below for why."


def budget_section(budget: int, rows: list[dict], verdicts: list[Verdict], published: dict, published_note: str,
                   statistics: dict | None) -> list[str]:
    """One budget: the final-epoch metrics, the band checks of that budget, the published table."""
    lines = [f"## {budget} epochs", "", f"Final-epoch metrics{(' — ' + statistics['rows']) if statistics else ''}:", "",
             markdown_table(results_table(rows)), ""]
    checked = baseline_table(budget, verdicts)
    if not checked.empty:
        lines += [f"Against the baseline — {statistics['checked'] if statistics else 'derived bands'}; "
                  f"MDE: the smallest shift caught {statistics['power'] if statistics else '90 %'} of the time:", "",
                  markdown_table(checked), ""]
    if published:
        lines += [f"Against the report's published table ({published_note}):", "",
                  markdown_table(published_table(budget, rows, published)), ""]
    return lines


NO_FIGURES = "## Figures\n\nNot drawn: this run was asked for the markdown alone (--no-figures).\n"


def write_report(summary, path: Path) -> Path:
    """Render a :class:`trainguard.api.RunSummary` to markdown at ``path``, figures (PNG) beside it."""
    path = Path(path)
    drawn = summary.figures
    sections = [model_figures(summary, path) if drawn else NO_FIGURES]  # the models' figures first, beside their tables
    if summary.changes is not None:
        source, old, new = summary.changes
        sections.append(changes_section(source, summary.profile.budgets, summary.profile.models, old, new))
    for part in summary.parts.values():  # each check kind's own sections, in the registry's order
        sections += part.sections(summary, path, drawn)
    if summary.entry is not None:
        sections.append(trend_section(summary, trend_figures(summary, path) if drawn else []))
    text = render(f"trainguard report — profile {summary.profile.name}", summary.environment,
                  summary.profile.budgets, summary.rows_by_budget, summary.verdicts, summary.published, summary.notes,
                  published_note=summary.published_note, extra_sections=sections, statistics=summary.statistics,
                  lead_sections=[replay_section(summary.replay, summary.verdicts)] if summary.replay else [],
                  timing_only=summary.result == "TIMING ONLY")
    return write(path, text)


def outcome_note(name: str, verdicts: list[Verdict]) -> str:
    """Whether a changed model's outcome moved: its band checks, and the smallest shift they could see."""
    mine = [v for v in verdicts if v.model == name and v.check == "baseline"]
    if not mine:
        return "no outcome band checked it"
    failed = [v for v in mine if not v.passed]
    if failed:
        return f"outcome moved: {len(failed)} of {len(mine)} band checks failed"
    acc = [v for v in mine if v.metric == "test_acc" and v.mde is not None]
    mde = f" (test-accuracy MDE {min(v.mde for v in acc):.2f} points)" if acc else ""
    return f"outcome within noise: {len(mine)} of {len(mine)} band checks passed{mde}"


def replay_headline(outcomes, verdicts: list[Verdict] = ()) -> str:
    """One sentence: did training and evaluation change since the golden runs were written (and did it matter)?"""
    from ..stores.golden import IDENTICAL, MISSING, NOISE

    present = [o for o in outcomes if o.status != MISSING]
    if not present:
        return "No golden runs to replay: nothing says whether training or evaluation changed."
    if all(o.status == IDENTICAL for o in present):
        return (f"**Training and evaluation are identical to the golden runs** ({len(present)} of {len(present)}, "
                f"every step bit for bit).")
    if all(o.status in (IDENTICAL, NOISE) for o in present):
        noisy = [o for o in present if o.status == NOISE]
        from ..stores.golden import describe_environment_diff

        return (f"Training and evaluation match the golden runs within the measured rounding noise; numerics differ "
                f"with {describe_environment_diff(noisy[0].environment_diff)} ({len(noisy)} of {len(present)}).")
    changed = [o for o in present if o.status not in (IDENTICAL, NOISE)]
    return "**Changed since the golden runs:** " + "; ".join(
        f"{o.message.split('; if the change')[0]} — {outcome_note(o.name, verdicts)}" for o in changed) + "."


def replay_section(outcomes, verdicts: list[Verdict] = ()) -> str:
    from ..stores.golden import MISSING

    rows = [{"golden run": o.name, "verdict": o.status if o.passed or o.status == MISSING else f"**{o.status}**",
             "where": (o.beyond or o.first).where() if (o.beyond or o.first) else "",
             "detail": o.message.removeprefix(f"{o.name}: ")} for o in outcomes]
    return "\n".join(["## Replay of the golden runs", "", replay_headline(outcomes, verdicts), "",
                      markdown_table(pd.DataFrame.from_records(rows)), "",
                      f"Replay time: {sum(o.seconds for o in outcomes):.1f} s "
                      f"({', '.join(f'{o.name} {o.seconds:.1f}' for o in outcomes if o.seconds)}).", "",
                      "Each golden run is a short fixed run per model (docs/replay.md), replayed step by step: on the "
                      "golden's own environment any difference is a change; on another, only a difference beyond the "
                      "rounding noise measured when the golden was written.", ""])


def model_figures(summary, path: Path) -> str:
    """The profile's models: training curves per model and the test-accuracy bar chart, as PNGs beside the report
    (``REPORT-models-curves.png``, ``REPORT-models-accuracy.png``)."""
    from ..core import plots

    histories, budgets = summary.curves, list(summary.profile.budgets)
    if not histories:
        return ""
    checked = [v for v in summary.verdicts if v.check == "baseline" and v.expected is not None and v.budget
               and v.metric in ("train_loss", "test_acc")]
    marks = {}
    for v in checked:
        marks.setdefault(v.model, []).append((v.budget, v.metric, v.measured, v.expected - v.allowed,
                                              v.expected + v.allowed, v.passed))
    curves = plots.training_curves(path.parent / f"{path.stem}-models-curves.png",
                                   f"{summary.profile.name}: per epoch, seed {summary.figure_seed}; shaded: the baseline's "
                                   f"seeds; ◆: the checked statistic and its band", histories,
                                   getattr(summary.parts.get("baseline"), "spread", {}), marks)
    acc = {(v.model, v.budget): v for v in checked if v.metric == "test_acc"}
    if acc:  # the figure shows what was checked: the night's statistic against the derived band
        measured = {key: v.measured for key, v in acc.items()}
        baseline = {key: (v.expected, v.allowed) for key, v in acc.items()}
        failed = {key for key, v in acc.items() if not v.passed}
    else:
        measured = {(m, b): h.at(b).test_acc for m, h in histories.items() for b in budgets if b <= len(h.epochs)}
        baseline, failed = {}, set()
    published = {(m, b): v for (m, b, metric), v in summary.published.items() if metric == "test_acc"}
    bars = plots.accuracy_bars(path.parent / f"{path.stem}-models-accuracy.png", f"Test accuracy ({summary.test_split})",
                               list(histories), budgets, measured, published, baseline, failed)
    return "\n".join(["## Figures", "", f"![Training curves over the baseline's spread]({curves.name})", "",
                      f"![Test accuracy as checked: this run, the baseline band, published]({bars.name})", ""])


TREND_RUNS = 10  # runs shown in the report's trend table and plots


def trend_section(summary, figures: list[str]) -> str:
    """Between nights: this run's speed and memory, drift and speed flags, the last runs per cell."""
    from ..checks.trend import LABELS, history_rows

    lines = ["## Trend", "", f"This run against the ledger ({len(summary.past_nights) - 1} earlier run(s) of "
             f"profile {summary.profile.name} on {summary.entry['device_class']}; hardware {summary.entry['hardware']}).", ""]
    speed = [{"model": m, "epoch s (median)": f"{s['epoch_seconds']:.3f}",
              "images/s": f"{s['images_per_second']:.0f}" if s.get("images_per_second") else "—",
              "peak memory MiB": f"{s['peak_memory_mb']:.0f}" if s.get("peak_memory_mb") else "—"}
             for m, s in summary.entry.get("speed", {}).items() if s.get("epoch_seconds")]
    if speed:
        experiments = any(row["model"] not in summary.profile.models for row in speed)
        lines += ["Speed and memory of the runs trained tonight (epoch 1 left out"
                  + ("; a declared experiment's variant: the time between its epoch reports, or the time it stated"
                     if experiments else "")
                  + "; peak memory: CUDA allocated, or the process's peak RSS on CPU):", "",
                  markdown_table(pd.DataFrame.from_records(speed)), ""]
    drift = [f for f in summary.flags if f.check == "drift"]
    if drift:
        lines += [f"Drift — each cell against the previous run, the band from the baseline's seed noise "
                  f"(α {summary.profile.statistics.false_alarm_rate:.0%} / {len(drift)} = "
                  f"{summary.profile.statistics.false_alarm_rate / len(drift):.2g} per check; MDE: the smallest step caught "
                  f"{summary.statistics.get('power', '90%')} of the time):", ""]
        lines.append(markdown_table(pd.DataFrame({
            "cell": [v.subject for v in drift], "metric": [LABELS.get(v.metric, v.metric) for v in drift],
            "previous": [_num(v.expected, v.metric) for v in drift], "now": [_num(v.measured, v.metric) for v in drift],
            "allowed ±": [_num(v.allowed, v.metric) for v in drift], "MDE": [_num(v.mde, v.metric) for v in drift],
            "verdict": ["pass" if v.passed else "**STEP**" for v in drift]})))
        lines.append("")
        lines += [f"- {v.message}" for v in drift if not v.passed] + ([""] if any(not v.passed for v in drift) else [])
    speed = [f for f in summary.flags if f.check == "speed"]
    if speed:
        lines += ["Speed — against earlier runs on this hardware, by ratio:", ""]
        lines += [f"- {'pass' if v.passed else '**SLOWDOWN**'}: {v.message}" for v in speed] + [""]
    lines += [f"> {note}" for note in summary.trend_notes]
    lines.append("")
    rows = history_rows(summary.past_nights, TREND_RUNS)
    if rows:
        lines += [f"The last {min(TREND_RUNS, len(summary.past_nights))} runs (checked statistic, mean over each run's seeds):",
                  "", markdown_table(pd.DataFrame.from_records(rows)), ""]
    lines += [f"![Trend: {name}]({name})" for name in figures]
    return "\n".join(lines + [""])


def trend_figures(summary, path: Path) -> list[str]:
    """Per model: the trend metric over the last runs, one line per budget, the baseline band shaded."""
    from ..core import plots
    from ..checks.trend import LABELS, series

    entries = summary.past_nights[-TREND_RUNS:]
    if len(entries) < 2:
        return []
    runs = [e.get("time", "?")[5:16].replace("T", " ") for e in entries]
    names = []
    for model in summary.profile.models:
        lines = {str(b): series(entries, model, b, summary.trend_metric) for b in summary.profile.budgets}
        if not any(v is not None for values in lines.values() for v in values):
            continue
        bands = {str(b): summary.trend_bands[(model, b)] for b in summary.profile.budgets
                 if (model, b) in summary.trend_bands}
        figure = plots.trend(path.parent / f"{path.stem}-trend-{model}.png",
                             f"{model}: {LABELS[summary.trend_metric]} over runs", LABELS[summary.trend_metric],
                             runs, lines, bands)
        names.append(figure.name)
    return names


def junit_xml(summary) -> str:
    """The verdicts as JUnit XML (one testcase per check), for CI systems that read it."""
    from xml.etree import ElementTree as ET

    checks = summary.verdicts + [f for f in summary.flags if f not in summary.verdicts]
    if summary.result == "NOTHING CHECKED":  # one failing case that says so, never an empty green suite
        checks = [Verdict("nothing", "nothing checked", False, " ".join(summary.notes[:4]))] + checks
    suite = ET.Element("testsuite", name=f"trainguard.{summary.profile.name}", tests=str(len(checks)),
                       failures=str(sum(not v.passed for v in summary.verdicts)
                                    + (summary.result == "NOTHING CHECKED")), errors="0",
                       skipped=str(sum(v not in summary.verdicts and not v.passed for v in checks)))
    for verdict in checks:
        name = verdict.subject + (f" {verdict.metric}" if verdict.metric else "")
        case = ET.SubElement(suite, "testcase", classname=f"trainguard.{summary.profile.name}.{verdict.check}",
                             name=name)
        if verdict.passed:
            continue
        if verdict in summary.verdicts or verdict.check == "nothing":
            ET.SubElement(case, "failure", message=verdict.message[:200]).text = verdict.message
        else:  # a flag the run was not asked to fail on
            ET.SubElement(case, "skipped", message=f"flagged, not failing: {verdict.message[:160]}")
    ET.indent(suite)
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="unicode", xml_declaration=True) + "\n"


def job_summary(summary, report_path: Path) -> str:
    """The short form for where people look first (GitHub's job summary): result, failures, flags, tables."""
    failed = summary.failed
    lines = [f"## trainguard {summary.profile.name}: {summary.result}", "",
             f"{len(summary.verdicts) - len(failed)} of {len(summary.verdicts)} checks passed; "
             f"seeds {summary.environment.get('seeds', '?')}; full report: `{report_path}` (artifact).", ""]
    if failed:
        lines += ["**Failed checks**", ""] + [f"- {v.message}" for v in failed] + [""]
    flagged = [v for v in summary.flags if not v.passed and v not in summary.verdicts]
    if flagged:
        lines += ["**Flagged (not failing)**", ""] + [f"- {v.message}" for v in flagged] + [""]
    for budget in summary.profile.budgets:
        checked = baseline_table(budget, summary.verdicts)
        if not checked.empty:
            lines += [f"**{budget} epochs** — against the baseline", "", markdown_table(checked), ""]
    return "\n".join(lines) + "\n"


def append_job_summary(markdown: str) -> None:
    """Add ``markdown`` to the GitHub job summary ($GITHUB_STEP_SUMMARY) when there is one."""
    import os

    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
            handle.write(markdown)


def write(path: Path, text: str) -> Path:
    atomic_write_text(Path(path), text)
    return Path(path)


def published_vs_measured(table, published: dict, profile) -> str:
    """Per model and budget: published vs measured mean ± std (n) and the difference, for the
    metrics the published check bands, with whether the mean is inside the band."""
    records = []
    for model in profile.models:
        for budget in profile.budgets:
            for metric in METRICS:
                cell, pub = table.cell(model, budget, metric), published.get((model, budget, metric))
                if cell is None or pub is None:
                    continue
                band = profile.published.band(metric)
                delta = cell.mean - pub
                records.append({"model": model, "epochs": str(budget), "metric": METRIC_LABELS[metric],
                                "published": _num(pub, metric),
                                "measured mean ± std (n)": f"{_num(cell.mean, metric)} ± {_num(cell.std, metric)} ({cell.n})",
                                "difference": _delta(delta, metric),
                                "band": f"±{band}" if band is not None else "—",
                                "inside": ("yes" if abs(delta) <= band else "**no**") if band is not None else "—"})
    return markdown_table(pd.DataFrame.from_records(records))
