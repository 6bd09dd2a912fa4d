"""What ``trainguard guard … check`` hands on, for any experiment: the night's verdicts as markdown (bands with their
MDE, claims, flags) and as JUnit XML (one testcase per band and per claim, named as pytest names the cases:
``dropout-4-test_acc``), so a CI system shows an experiment's night as it shows a profile's."""

from __future__ import annotations


def markdown(experiment, verdicts, asserted, flags, notes, results=None, path=None) -> str:
    """``results`` (trainguard.checks.experiment_results.Results): what the night's runs measured — the bands as
    checked per budget, then every metric per seed — tabled, and drawn beside the report at ``path`` (no figure
    without it)."""
    from ..checks.experiment_results import checked_of_bands, checked_section, section
    from .markdown import markdown_table, pd

    failed = sum(not v.passed for v in [*verdicts, *asserted])
    lines = ([f"- FAIL {v.message}" for v in verdicts if not v.passed]
             + [f"- {'claim' if hasattr(c, 'claim') else 'reference'} {'PASS' if c.passed else 'FAIL'}: {c.message}"
                for c in asserted]
             + [f"- {line}" for line in [f.message for f in flags] + notes])
    if results:
        body = checked_section(results, checked_of_bands(verdicts), path, path is not None, heading="##") \
            + section(results, path, path is not None, heading="##")
    else:  # no runs to draw from: the bands alone
        body = [markdown_table(pd.DataFrame.from_records(
            [{"case": v.case, "night": "—" if v.value is None else f"{v.value:.4g}",
              "band": "—" if v.band is None else f"{v.band.low:.4g} … {v.band.high:.4g}",
              "verdict": "PASS" if v.passed else "FAIL"} for v in verdicts])), ""]
    return (f"# trainguard — experiment {experiment.name}\n\n**{'FAIL' if failed else 'PASS'}**: "
            f"{len(verdicts) + len(asserted) - failed} passed, {failed} failed\n\n"
            + "".join(f"{line}\n" for line in lines) + ("\n" if lines else "") + "\n".join(body))


def junit_xml(experiment, verdicts, asserted, flags) -> str:
    """Bands and claims as failing-or-passing testcases; flags (drift, speed) that are not failures as skipped
    ones, so they are seen without turning the night red."""
    from xml.etree import ElementTree as ET

    cases = ([("band", v.case, v.passed, v.message) for v in verdicts]
             + [("claim", c.name, c.passed, c.message) for c in asserted])
    flagged = [f for f in flags if not f.passed]
    suite = ET.Element("testsuite", name=f"trainguard.{experiment.name}", tests=str(len(cases) + len(flagged)),
                       failures=str(sum(not passed for _, _, passed, _ in cases)), errors="0",
                       skipped=str(len(flagged)))
    for kind, name, passed, message in cases:
        case = ET.SubElement(suite, "testcase", classname=f"trainguard.{experiment.name}.{kind}", name=name)
        if not passed:
            ET.SubElement(case, "failure", message=message[:200]).text = message
    for flag in flagged:
        case = ET.SubElement(suite, "testcase", classname=f"trainguard.{experiment.name}.{flag.check}",
                             name=flag.subject)
        ET.SubElement(case, "skipped", message=f"flagged, not failing: {flag.message[:160]}")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
