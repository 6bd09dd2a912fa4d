"""The reference the engine is measured against: a CIFAR-10 training loop written the way course
code writes it — a torch ``Dataset`` that turns each image into a PIL image and through
``ToTensor`` + ``Normalize`` (as ``torchvision.datasets.CIFAR10`` does), a ``DataLoader`` with
the default ``num_workers=0``, the model in its default memory format, and ``.item()`` on the
loss and the correct count every step. With ``augment="flip_crop"`` the images also go through
``RandomHorizontalFlip`` + ``RandomCrop(32, padding=4)`` per sample, as the protocol's course
code would do it.

It trains the same models on the same arrays with the same optimizer; only the plumbing differs.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from trainguard import models


# The engine's augmentations (trainguard.engines.engine.augment) as torchvision's per-sample PIL transforms.
AUGMENTATIONS = {
    "none": lambda: [],
    "flip": lambda: [transforms.RandomHorizontalFlip()],
    "flip_crop": lambda: [transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, padding=4)],
}


class ArrayCIFAR(Dataset):
    """uint8 HWC arrays served one image at a time, like torchvision.datasets.CIFAR10.__getitem__."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, augment: str = "none") -> None:
        self.images, self.labels = images, labels
        self.transform = transforms.Compose(AUGMENTATIONS[augment]() + [
            transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def train_epochs(model_name: str, images: np.ndarray, labels: np.ndarray, batch_size: int, epochs: int,
                 device: torch.device, lr: float = 0.01, seed: int = 0, augment: str = "none") -> list[float]:
    """Train for ``epochs`` epochs; return each epoch's wall time in seconds."""
    torch.manual_seed(seed)
    model = models.build(model_name).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader(ArrayCIFAR(images, labels, augment), batch_size=batch_size, shuffle=True)
    seconds = []
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        running_loss, correct, total = 0.0, 0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            out = model(x)
            loss = criterion(out, y)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            correct += (out.argmax(1) == y).sum().item()
            total += y.size(0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds
