"""trainguard's adapter for train.py: the script's own network, loss, optimiser, schedule, transform and settings."""
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import trainguard
import train as script  # the script beside this file, unchanged

ARGS = script.get_parser().parse_args([])  # the script's own settings: batch size, lr, gamma …
ARGS.log_interval = 10 ** 9


def images(run):  # MNIST from run.data_dir (mnist.npz, keras layout), else generated images of its shapes
    if run.data_dir and (Path(run.data_dir) / "mnist.npz").exists():
        with np.load(Path(run.data_dir) / "mnist.npz") as d:
            return d["x_train"][:2000], d["y_train"][:2000], d["x_test"][:500], d["y_test"][:500]
    rng = np.random.default_rng(12345)
    return (rng.integers(0, 256, (512, 28, 28), dtype=np.uint8), np.arange(512) % 10,
            rng.integers(0, 256, (256, 28, 28), dtype=np.uint8), np.arange(256) % 10)


def batches(run):  # the script's training batches; the replay also reads them whole, without the model
    train_set = [(script.transform(x), int(y)) for x, y in zip(*images(run)[:2])]
    return torch.utils.data.DataLoader(train_set, batch_size=ARGS.batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(run.seed))


@trainguard.experiment(metrics={"test_loss": "lower", "test_acc": "higher"}, budgets=(1, 2), replay_budget=2,
                       data=batches)
def mnist(run):
    torch.manual_seed(run.seed)
    torch.set_num_threads(run.threads)
    x_train, y_train, x_test, y_test = images(run)
    run.inputs(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    x, y = torch.stack([script.transform(a) for a in x_test]), torch.tensor(y_test, dtype=torch.long)
    loader = batches(run)
    model = script.Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=ARGS.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=ARGS.gamma)
    optimizer.register_step_post_hook(lambda opt, *_: run.step(
        lr=opt.param_groups[0]["lr"], weight_norm=sum(p.double().pow(2).sum().item() for p in model.parameters())))
    for epoch in range(1, run.budget + 1):
        script.train(ARGS, model, "cpu", run.batches(loader), optimizer, epoch)
        model.eval()
        with torch.no_grad():
            out = model(x)
        run.epoch(test_loss=F.nll_loss(out, y).item(), test_acc=100.0 * (out.argmax(1) == y).float().mean().item())
        scheduler.step()
