"""The replay: the profile's golden runs, written with their measured rounding noise and replayed step by step
(:mod:`trainguard.replay.golden_runs`), and the check kind that judges the replays (:mod:`trainguard.replay.kind`)."""
