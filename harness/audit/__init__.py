"""Audit: instruments that measure the instruments — the self-test (does each check catch an injected regression)
and the calibration (false alarms, detectable effects and noise of the bands, from stored runs)."""
