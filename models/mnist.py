"""The dense MNIST network of the report's overfitting experiment (docs/protocol.md, Experiment 1),
in PyTorch and in Keras: Flatten → 2 × [Dense(512, ReLU) → (Dropout(0.5))] → Dense(10, softmax).

The report names only the layer types and Dropout(0.5); the depth and width are inferred.
Measured on 4 seeds (PyTorch, 10,000 test images): one hidden layer of 512 gives a
dropout/no-dropout gap ratio of 0.71 (report: 0.31) and a test loss that barely rises;
two of 512 give 0.19 and a final test loss with dropout of 11.8 (report: 11.57 on its 50
validation images); two of 256 turn the dropout gap negative. Inputs are raw pixels
0–255, as in the report. Pure definitions; training lives in harness/.
"""

from __future__ import annotations

from torch import nn

HIDDEN = (512, 512)


class DenseMNIST(nn.Module):
    """Flatten(784) → 2 × [Linear(·, 512) → ReLU → (Dropout(p))] → Linear(512, 10).  669,706 parameters.

    Initialised like Keras' Dense (Glorot-uniform weights, zero biases) so that the
    PyTorch twin starts where the Keras model does. The softmax lives in the loss.
    """

    def __init__(self, dropout: float = 0.0, hidden: tuple[int, ...] = HIDDEN) -> None:
        super().__init__()
        layers, width = [nn.Flatten()], 28 * 28
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, 10))
        self.net = nn.Sequential(*layers)
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.net(x)


def keras_dense_mnist(dropout: float = 0.0, hidden: tuple[int, ...] = HIDDEN):
    """The same network in Keras (the report's framework). Imports Keras lazily: it is optional."""
    import keras

    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)
