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

    path = report.write_report(summary, report_path)  # first: whatever fails after it, the night's report stands
    location = resolve_location(ledger, ledger_dir)
    problem = summary.ledger_error
    if location is not None and summary.entry is not None and problem is None:
        try:
            open_ledger(location).append(summary.entry, report_files(path))
        except ConfigError as exc:  # a ledger outage: the rest is still written, then the night says so (exit 2)
            problem = str(exc)
    if junit_xml is not None:
        report.write(Path(junit_xml), report.junit_xml(summary))
    if mlflow and summary.entry is not None:
        export_to_mlflow(mlflow, summary.entry, path)
    report.append_job_summary(report.job_summary(summary, path))
    if problem is not None:
        raise NotRecorded(f"{problem}. This night is NOT in the ledger; its report {path} is written"
                          + (f", and the JUnit XML {junit_xml}" if junit_xml is not None else "")
                          + ". Once the ledger is back: `trainguard report --from-log RUNLOG --record` records it "
                            "(once, however often it is run)", path)
    return path


class NotRecorded(ConfigError):
    """Everything of the night was written but its ledger entry (the ledger could not be read or written)."""

    def __init__(self, message: str, report: Path) -> None:
        super().__init__(message)
        self.report = report


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
        from ..core.redact import redact_text, redact_url

        print(f"trainguard: the MLflow export to {redact_url(uri)} failed ({type(exc).__name__}: {redact_text(str(exc))}); "
              f"the night is in the report and the ledger", file=sys.stderr)


def report_files(path: Path) -> dict[str, bytes]:
    """The report just written (as ``report.md``) and its figures (``<stem>-*.png`` beside it, under their own
    names: the report links them so), as the ledger keeps them."""
    path = Path(path)
    files = {"report.md": path.read_bytes()}
    for figure in sorted(path.parent.glob(f"{path.stem}-*.png")):
        files[figure.name] = figure.read_bytes()
    return files
