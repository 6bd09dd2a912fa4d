"""Engines: one training run of the profile's models — the image-classification loop (with the seams the self-test
injects into) and the seeds-stacked variant that reuses them. A plug-in experiment may train through them too
(trainguard.experiments); a user's experiment brings its own loop."""
