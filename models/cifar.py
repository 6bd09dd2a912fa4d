"""The four CIFAR-10 classifiers of the course report (docs/protocol.md, Experiment 2).

Pure model definitions: no training code. Inputs are float tensors of shape
(N, 3, 32, 32) scaled to [-1, 1]; outputs are (N, 10) scores fed to
``nn.CrossEntropyLoss``.

The report describes the models only in words; the architectures below follow
those words and the probes in docs/protocol.md. Calibration against the published
numbers is tracked separately (see README, "Protocol").
"""

from __future__ import annotations

from torch import nn


class Baseline1(nn.Module):
    """Linear classifier on raw pixels with a softmax *before* CrossEntropyLoss.

    Flatten(3·32·32) → Linear(3072, 10) → Softmax.  30,730 parameters.

    The double softmax (here and inside CrossEntropyLoss) is deliberate: the
    report's loss stays near 2.05 while accuracy climbs to ~40 %, which is what a
    softmax-then-cross-entropy classifier does (its loss cannot fall far below
    ~1.46 even when every prediction is right).
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10), nn.Softmax(dim=1))

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    """LeNet-5 layout: two conv(5x5)→ReLU→maxpool(2) stages and three dense layers."""

    def __init__(self, channels: tuple[int, int], hidden: tuple[int, int]) -> None:
        super().__init__()
        c1, c2 = channels
        h1, h2 = hidden
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 5 * 5, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class Baseline2(LeNet):
    """The report's small CNN: LeNet-5 with 6 and 16 channels, dense 120 → 84 → 10.

    conv5x5(3→6) → ReLU → maxpool → conv5x5(6→16) → ReLU → maxpool →
    Linear(400, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, 10).
    62,006 parameters.
    """

    def __init__(self) -> None:
        super().__init__(channels=(6, 16), hidden=(120, 84))


class NewModel1(LeNet):
    """Baseline2 with more parameters: the same layout, channels 16 and 32, dense 256 → 128.

    conv5x5(3→16) → ReLU → maxpool → conv5x5(16→32) → ReLU → maxpool →
    Linear(800, 256) → ReLU → Linear(256, 128) → ReLU → Linear(128, 10).
    253,290 parameters (4× Baseline2). The widening is kept moderate: the
    report's NewModel1 overfits less than a 32/64-channel LeNet does.
    """

    def __init__(self) -> None:
        super().__init__(channels=(16, 32), hidden=(256, 128))


class NewModel2(nn.Module):
    """Deeper CNN, VGG-style: three stages of two conv3x3 layers each, channels growing
    32 → 64 → 128, a max-pool after every stage (three, against Baseline2's two), dropout
    in the classifier.

    3 × [conv3x3 → BatchNorm → ReLU → conv3x3 → BatchNorm → ReLU → maxpool(2)] (32×32 → 4×4) →
    Flatten(2048) → Dropout(0.5) → Linear(2048, 256) → ReLU → Dropout(0.5) → Linear(256, 10).
    815,018 parameters.

    Inferred, not in the report: two convolutions per stage and BatchNorm. With plain SGD at
    lr 0.01 this depth without BatchNorm sits at chance for epochs (docs/protocol.md probes), and
    one convolution per stage (four stages to 256 channels, with or without BatchNorm) learns
    far more slowly than the report's NewModel2 under the seed protocol (epoch 5: 56.6-62.0 %
    running train accuracy against the published 70.1 %). README, "Protocol", has the numbers.

    The keyword arguments rebuild the other layouts that were probed (e.g. ``stages=4,
    convs_per_stage=1, conv_dropout=0.1``); the defaults are the calibrated model.
    """

    def __init__(self, dropout: float = 0.5, conv_dropout: float = 0.0, batchnorm: bool = True,
                 stages: int = 3, convs_per_stage: int = 2, hidden: int = 256) -> None:
        super().__init__()
        layers = []
        channels = (3, 32, 64, 128, 256)[: int(stages) + 1]
        for c_in, c_out in zip(channels, channels[1:]):
            for conv in range(int(convs_per_stage)):
                layers.append(nn.Conv2d(c_in if conv == 0 else c_out, c_out, 3, padding=1))
                if batchnorm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.ReLU())
            layers.append(nn.MaxPool2d(2))
            if conv_dropout:
                layers.append(nn.Dropout(conv_dropout))
        self.features = nn.Sequential(*layers)
        side = 32 >> int(stages)  # each stage halves the 32×32 image
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels[-1] * side * side, int(hidden)), nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(int(hidden), 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
