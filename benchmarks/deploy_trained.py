"""Deploy a trained Fashion-MNIST resnet20 checkpoint with every scheme and print the Engine's test
accuracy, the .edgeopt file size and batch-1 latency (the table in the top-level README).

    edgeopt train --model resnet20 --dataset fashion-mnist --epochs 10 --save r20.npz
    PYTHONPATH=python python benchmarks/deploy_trained.py r20.npz
"""
import sys

import edgeopt as eo


def main(path: str) -> None:
    train, test = eo.data.fashion_mnist()
    model = eo.models.create("resnet20", num_classes=10, in_channels=1)
    meta = eo.train.load_checkpoint(path, model)
    model.input_norm = meta["input_norm"]
    r = eo.train.evaluate(model, test)
    print(f"{'model (Python)':<14} acc {100 * r['acc']:.2f} %")
    for scheme in ("fp32", "fp16", "int8-weight", "int8-full"):
        engine = eo.deploy.compile(model, scheme=scheme, calib=train, input_shape=(1, 1, 28, 28))
        r = eo.train.evaluate(engine, test)
        lat = eo.deploy.latency(engine, batch=1)
        print(f"{scheme:<14} acc {100 * r['acc']:.2f} %  size {engine.size_bytes:>9} B  "
              f"median {lat['median_ms']:.3f} ms  p90 {lat['p90_ms']:.3f} ms  ({lat['threads']} threads, {lat['isa']})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "r20.npz")
