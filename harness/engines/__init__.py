"""Engines: one training run — the CIFAR-10 loop (with the seams the self-test injects into), the seeds-stacked
variant that reuses them, the MNIST overfitting experiment in PyTorch and (in a child process) Keras."""
