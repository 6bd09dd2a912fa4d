"""The names the report's first experiment had before it was a plug-in, and what replaced each: plain data, read by
trainguard's table of retired names (trainguard.core.retired) on its first lookup. Imports nothing.

Retired when the report's first experiment (a dense network on 200 MNIST images, with and without dropout, in
PyTorch and Keras) stopped being machinery of its own and became a plug-in declared on the public Experiment
contract (trainguard.experiments.mnist_overfit), checked by the instruments every declared experiment gets.
"""

from __future__ import annotations

_PLUG_IN = "trainguard.experiments.mnist_overfit"

#: Profile keys ("section" or "section.key") → why they are gone and what to write instead.
_PROFILE_KEYS = {
    "mnist": f"the [mnist] section is retired: Experiment 1 is a plug-in on the Experiment contract; declare it as any "
             f"experiment, experiments = [\"{_PLUG_IN}:torch\", \"{_PLUG_IN}:keras\"] (other settings: a module of "
             f"yours holding mine = {_PLUG_IN}.make(Settings(...)); docs/own-training.md)",
    "golden.mnist_seed": "[golden] mnist_seed is retired: a declared experiment's golden run is its own (seed 0, its "
                         "replay_budget epochs); delete the key",
}

#: Check kinds → the kind that checks what they checked (a test marked with an old name is told, not skipped).
_CHECK_KINDS = {"mnist_gaps": "experiments", "mnist_conclusions": "experiments"}

#: Command-line flags → the flag that does what they did (accepted, with a note).
_FLAGS = {"--skip-mnist": "--skip-experiments"}

#: Old import paths below ``trainguard`` → where the module is now (imported, warning once).
_MODULES = {"keras_engine": "experiments.mnist_keras", "engines.keras_engine": "experiments.mnist_keras",
            "overfit": "experiments.mnist_overfit", "engines.overfit": "experiments.mnist_overfit"}

#: Keys of ledger records written before the plug-in (per-framework gaps): still read, never written.
_RECORD_KEYS = ("mnist",)

RETIRED = {"profile_keys": _PROFILE_KEYS, "check_kinds": _CHECK_KINDS, "flags": _FLAGS, "modules": _MODULES,
           "record_keys": _RECORD_KEYS}
