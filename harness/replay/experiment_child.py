"""The child process of an experiment's lower-ISA golden run (trainguard.replay.experiment_replay): the instruction
set is chosen when a library loads, so the run needs a process of its own started with the environment that
lowers it. ``python -m trainguard.replay.experiment_child TARGET VARIANT EPOCHS THREADS DEVICE DATA_DIR OUT``."""

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from ..core.experiment import load_experiment
    from ..core.storage import atomic_write_json
    from .experiment_replay import golden_run

    target, variant, epochs, threads, device, data_dir, out = argv
    record = golden_run(load_experiment(target), variant, int(epochs), int(threads), device,
                        Path(data_dir) if data_dir else None)
    atomic_write_json(Path(out), record.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
