"""The record stage: everything a finished night leaves behind — the report (figures beside it), the night in the
ledger (its record with the report and figures, one transaction), JUnit XML, the MLflow export, and in GitHub
Actions the job summary."""

from __future__ import annotations

from pathlib import Path

from ..core.spec import ConfigError
from .judge import RunSummary


def publish(summary: RunSummary, report_path: Path, ledger: str | Path | None = None,
            junit_xml: Path | None = None, ledger_dir: Path | None = None, mlflow: str | None = None) -> Path:
    """Everything a finished run leaves behind: the report (figures beside it), the night in the ledger (its record
    with the report and figures, one transaction), the JUnit XML where asked, and in GitHub Actions the job summary
    ($GITHUB_STEP_SUMMARY). ``ledger_dir``: the former option (``DIR/ledger.sqlite``)."""
    from ..report import markdown as report
    from ..stores.ledger import open_ledger, resolve_location

    path = report.write_report(summary, report_path)
    location = resolve_location(ledger, ledger_dir)
    if location is not None and summary.entry is not None:
        open_ledger(location).append(summary.entry, report_files(path))
    if junit_xml is not None:
        report.write(Path(junit_xml), report.junit_xml(summary))
    if mlflow and summary.entry is not None:
        export_to_mlflow(mlflow, summary.entry, path)
    report.append_job_summary(report.job_summary(summary, path))
    return path


def export_to_mlflow(uri: str, entry: dict, report_path: Path) -> None:
    """The optional export: a failure is said on stderr and changes neither the result nor the exit code (the
    report and the ledger already hold the night)."""
    import sys

    from ..report.mlflow_export import log_night

    try:
        log_night(uri, entry, report_path)
    except ConfigError:
        raise
    except Exception as exc:  # an MLflow server down, a store it cannot write: the night stands without it
        print(f"trainguard: the MLflow export to {uri} failed ({type(exc).__name__}: {exc}); the night is in the report "
              f"and the ledger", file=sys.stderr)


def report_files(path: Path) -> dict[str, bytes]:
    """The report just written (as ``report.md``) and its figures (``<stem>-*.png`` beside it, under their own
    names: the report links them so), as the ledger keeps them."""
    path = Path(path)
    files = {"report.md": path.read_bytes()}
    for figure in sorted(path.parent.glob(f"{path.stem}-*.png")):
        files[figure.name] = figure.read_bytes()
    return files
