"""Datasets and the DataLoader.

    train, test = edgeopt.data.fashion_mnist()          # uint8 (N, 1, 28, 28), int64 labels
    train, test = edgeopt.data.cifar10(root)            # uint8 (N, 3, 32, 32); also cifar100
    train, test = edgeopt.data.synthetic(10, (3, 32, 32), 1000, 200, seed=0)
    ds = edgeopt.data.Dataset(x, y)                     # any arrays
    mean, std = train.stats()
    for x, y in edgeopt.data.DataLoader(train, 128, shuffle=True, mean=mean, std=std,
                                        augment="crop_flip"):
        ...                                             # x float32 (B, C, H, W), y int64 (B,)
"""
from .cifar import cifar10, cifar100
from .dataset import Dataset
from .download import DownloadError
from .fashion_mnist import fashion_mnist
from .idx import read_idx
from .loader import DataLoader
from .synthetic import synthetic

__all__ = ["Dataset", "DataLoader", "DownloadError", "cifar10", "cifar100", "fashion_mnist",
           "read_idx", "synthetic"]
