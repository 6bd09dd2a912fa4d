"""The course report's two experiments as plug-ins on the public Experiment contract (trainguard.core.experiment),
written as any user's experiment is: ``trainguard guard trainguard.experiments.mnist_overfit:torch check``.

- :mod:`~trainguard.experiments.mnist_overfit`: the dense network on 200 MNIST images, without and with dropout
  (PyTorch; the Keras twin in its child process, :mod:`~trainguard.experiments.mnist_keras`), its claims "dropout
  shrinks the gap" and "dropout lowers the final test loss". The ``ci`` profile declares it
  (``experiments = [...]``): its night checks it as it checks any declared experiment;
- :mod:`~trainguard.experiments.cifar_models`: the four CIFAR-10 classifiers at lr 0.01, its claims the report's
  ranking and "more epochs help", its settings ``cifar-models-ci.toml`` beside it. The ``ci`` profile declares it too;
  it trains the numbers the models' machinery (trainguard.runs.matrix) trained before, and a test holds them equal.
"""
