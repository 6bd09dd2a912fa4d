"""Stores: where measured things live between processes and nights — the data cache, the result cache, the run
log, the baselines, the golden runs and the ledger of nights. Each reads and writes atomically and refuses a
damaged file naming it."""
