"""One training step (forward + backward + SGD) of CIFAR ResNet-20, batch 128, 3x32x32:
edgeopt against PyTorch CPU, same thread count, same machine, one run. Prints images/s and the
ratio edgeopt / PyTorch.

    PYTHONPATH=python python benchmarks/bench_train_step.py [--threads 2] [--steps 10]
"""
import argparse
import platform
import time

import numpy as np
import torch

import edgeopt as eo
from torch_twins import resnet_cifar


def time_steps(step, warmup, steps):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    eo.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, a.batch).astype(np.int64)

    model = eo.models.create("resnet20", num_classes=10, in_channels=3)
    model.train()
    opt = eo.optim.SGD(list(model.named_parameters()), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def eo_step():
        opt.zero_grad()
        logits = model(x)
        _, dlogits = eo.nn.functional.cross_entropy(logits, y)
        model.backward(dlogits)
        opt.step()

    tm = resnet_cifar(20)
    tm.train()
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tm(tx), ty)
        loss.backward()
        topt.step()

    t_eo = time_steps(eo_step, a.warmup, a.steps)
    t_pt = time_steps(torch_step, a.warmup, a.steps)
    print(f"CPU: {platform.processor() or platform.machine()}  ISA path: {eo._core.active_isa()}  "
          f"threads: {a.threads}  torch {torch.__version__}")
    print(f"resnet20 train step, batch {a.batch}: edgeopt {a.batch / t_eo:8.1f} img/s ({1e3 * t_eo:.1f} ms)   "
          f"PyTorch {a.batch / t_pt:8.1f} img/s ({1e3 * t_pt:.1f} ms)   ratio edgeopt/PyTorch {t_pt / t_eo:.2f}")


if __name__ == "__main__":
    main()
