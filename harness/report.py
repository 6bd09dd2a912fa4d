"""Markdown report: verdicts + histories → tables rendered with pandas + tabulate. Pure rendering."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .compare import Verdict
from .spec import METRIC_LABELS, METRICS
from .storage import atomic_write_text


def _table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True)


def _num(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if metric.endswith("loss") else f"{value:.2f}"


def cell_table(budget: int, rows: list[dict], verdicts: list[Verdict], published: dict) -> pd.DataFrame:
    """One row per model: each metric measured, baseline mean ± allowed, difference, verdict; then published."""
    by_key = {(v.model, v.budget, v.metric): v for v in verdicts if v.check == "baseline"}
    records = []
    for row in rows:
        model = row["model"]
        out = {"Model": model}
        statuses = []
        for metric in METRICS:
            label = METRIC_LABELS[metric]
            measured = row[metric]
            out[label] = _num(measured, metric)
            v = by_key.get((model, budget, metric))
            if v is not None:
                out[f"{label} baseline"] = f"{_num(v.expected, metric)} ± {_num(v.allowed, metric)}"
                out[f"Δ {label}"] = f"{measured - v.expected:+.4f}" if metric.endswith("loss") else f"{measured - v.expected:+.2f}"
                statuses.append(v.passed)
            pub = published.get((model, budget, metric))
            out[f"{label} published"] = _num(pub, metric)
        out["Verdict"] = ("pass" if all(statuses) else "**FAIL**") if statuses else "not compared"
        records.append(out)
    return pd.DataFrame.from_records(records)


def render(title: str, environment: dict, budgets: tuple[int, ...], rows_by_budget: dict[int, list[dict]],
           verdicts: list[Verdict], published: dict, notes: list[str] = ()) -> str:
    failed = [v for v in verdicts if not v.passed]
    lines = [f"# {title}", ""]
    lines.append(f"**Result: {'FAIL' if failed else 'PASS'}** — {len(verdicts) - len(failed)} of {len(verdicts)} checks passed.")
    lines.append("")
    lines.append(_table(pd.DataFrame({"": list(environment), "value": [str(v) for v in environment.values()]})))
    lines.append("")
    for note in notes:
        lines.append(f"> {note}")
        lines.append("")
    for budget in budgets:
        lines.append(f"## {budget} epochs (lr as profiled)")
        lines.append("")
        lines.append(_table(cell_table(budget, rows_by_budget[budget], verdicts, published)))
        lines.append("")
    other = [v for v in verdicts if v.check != "baseline"]
    if other:
        lines.append("## Checks")
        lines.append("")
        lines.append(_table(pd.DataFrame({"check": [v.subject for v in other],
                                          "verdict": ["pass" if v.passed else "**FAIL**" for v in other],
                                          "detail": [v.message for v in other]})))
        lines.append("")
    if failed:
        lines.append("## Failures")
        lines.append("")
        lines += [f"- {v.message}" for v in failed]
        lines.append("")
    return "\n".join(lines)


def write(path: Path, text: str) -> Path:
    atomic_write_text(Path(path), text)
    return Path(path)
