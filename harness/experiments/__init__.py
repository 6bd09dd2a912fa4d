"""The course report's two experiments as plug-ins on the public Experiment contract (trainguard.core.experiment),
written as any user's experiment is: ``trainguard guard trainguard.experiments.mnist_overfit:torch check``.

- :mod:`~trainguard.experiments.mnist_overfit`: the dense network on 200 MNIST images, without and with dropout
  (PyTorch; the Keras twin in its child process), its claims "dropout shrinks the gap" and "dropout lowers the
  final test loss";
- :mod:`~trainguard.experiments.cifar_models`: the four CIFAR-10 classifiers at lr 0.01, its claims the report's
  ranking and "more epochs help".

The built-in profiles still run these experiments through their own machinery (trainguard.runs.matrix); these
plug-ins train the same runs through the same engine, and a test holds their numbers equal.
"""
