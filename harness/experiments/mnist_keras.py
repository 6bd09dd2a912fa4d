"""The Keras twin of the MNIST overfitting experiment (trainguard.experiments.mnist_overfit), trained in a child
process, with the loss Keras logs after every batch and the learning rate (what the golden replay compares step by
step, as it does the PyTorch twin's).

TensorFlow and PyTorch in one process crash here (a segmentation fault in the first torch operation when
TensorFlow was imported before it — seen with tensorflow-cpu 2.21 and torch 2.14), so Keras runs in its own
interpreter: the parent writes the subset to a temporary .npz it created, the child trains and writes the history
as JSON to a file (never to stdout, where a library's print would break it), and is killed if it runs past its
bound (trainguard.core.watchdog). Besides the isolation this keeps TensorFlow's start-up and threads out of the
pytest process. Its threads are set before TensorFlow starts (they cannot change later in a process).

    python -m trainguard.experiments.mnist_keras SUBSET.npz CONFIG.json OUT.json
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..core.history import EpochRecord, History
from ..core.watchdog import run_child


def train_keras(arrays: dict, config: dict, dropout: float, seed: int, steps: dict | None = None) -> History:
    """One run; ``steps`` (a dict) receives the per-batch ``loss`` (Keras' running mean over the epoch so far) and
    ``lr``."""
    import keras
    import tensorflow as tf

    from ..models.mnist import keras_dense_mnist

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = keras_dense_mnist(dropout)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config["lr"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x_test, y_test = arrays["x_test"].astype("float32"), arrays["y_test"].astype("int64")
    history = History(model=f"keras Dense(dropout={dropout})", seed=seed, device="cpu (tensorflow)",
                      parameters=int(model.count_params()))

    class Record(keras.callbacks.Callback):
        """After each epoch: the Keras logs plus an evaluation on the test images."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.started
            test_loss, test_acc = self.model.evaluate(x_test, y_test, batch_size=2000, verbose=0)
            history.epochs.append(EpochRecord(
                epoch=epoch + 1, train_loss=float(logs["loss"]), train_acc=100.0 * float(logs["accuracy"]),
                test_loss=float(test_loss), test_acc=100.0 * float(test_acc), seconds=seconds,
                extra={"val_loss": float(logs["val_loss"]), "val_acc": 100.0 * float(logs["val_accuracy"])}))
            if not math.isfinite(float(logs["loss"])):
                history.status, history.failed_epoch = "diverged", epoch + 1
                history.message = f"loss became {logs['loss']} during epoch {epoch + 1}"
                self.model.stop_training = True

    class Steps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.setdefault("loss", []).append(float(logs["loss"]))
            steps.setdefault("lr", []).append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    # validation_data is exactly what validation_split=0.25 would hold out (the last quarter,
    # see mnist_overfit.small_subset); passing it explicitly lets the PyTorch twin use the same split.
    model.fit(arrays["x_train"].astype("float32"), arrays["y_train"].astype("int64"),
              validation_data=(arrays["x_val"].astype("float32"), arrays["y_val"].astype("int64")),
              batch_size=config["batch_size"], epochs=config["epochs"], shuffle=True, verbose=0,
              callbacks=[Record()] + ([Steps()] if steps is not None else []))
    return history


def train_in_subprocess(subset, config, dropout: float, seed: int, threads: int | None = None) -> tuple[History, dict]:
    """(the run's history, its per-batch ``loss`` and ``lr``), trained in a child process."""
    with tempfile.TemporaryDirectory(prefix="trainguard-keras-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "subset.npz", x_train=subset.x_train, y_train=subset.y_train, x_val=subset.x_val,
                 y_val=subset.y_val, x_test=subset.x_test, y_test=subset.y_test)
        (tmp / "config.json").write_text(json.dumps({**dataclasses.asdict(config), "dropout": dropout, "seed": seed,
                                                          "threads": threads}))
        done = run_child([sys.executable, "-m", "trainguard.experiments.mnist_keras", str(tmp / "subset.npz"),
                          str(tmp / "config.json"), str(tmp / "history.json")],
                         f"the Keras run (dropout {dropout}, seed {seed})", env=subprocess_env())
        if done.returncode != 0:
            raise RuntimeError(f"the Keras run (dropout {dropout}, seed {seed}) failed with exit code "
                               f"{done.returncode}:\n{done.stderr[-3000:]}")
        out = json.loads((tmp / "history.json").read_text())
        return History.from_json(out["history"]), out["steps"]


def subprocess_env() -> dict:
    """The child's environment: quiet TensorFlow, and this package importable (a checkout or a wheel)."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))}


def _tensorflow_with_threads(threads: int | None):
    """TensorFlow with ``threads`` intra- and inter-op threads (before its first op: they cannot change later)."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def main(argv: list[str]) -> int:
    subset_path, config_path, out_path = map(Path, argv)
    config = json.loads(config_path.read_text())
    _tensorflow_with_threads(config.get("threads"))
    with np.load(subset_path, allow_pickle=False) as archive:  # a file the parent just wrote
        arrays = {key: archive[key] for key in archive.files}
    steps: dict = {}
    history = train_keras(arrays, config, config["dropout"], config["seed"], steps)
    out_path.write_text(json.dumps({"history": history.to_json(), "steps": steps}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
