"""The training step the benchmarks time, written once for both libraries: SGD (lr 0.01, momentum
0.9, weight decay 5e-4) on softmax cross-entropy. Importing this module imports neither library:
bench_train_memory measures each in a process that never loads the other."""


def edgeopt_sgd_step(model, x, y):
    """A function running one step of edgeopt `model` on the batch (x, y)."""
    import edgeopt as eo
    model.train()
    opt = eo.optim.SGD(list(model.named_parameters()), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad()
        logits = model(x)
        _, dlogits = eo.nn.functional.cross_entropy(logits, y)
        model.backward(dlogits)
        opt.step()
    return step


def torch_sgd_step(module, x, y):
    """The same for a torch.nn.Module (x, y numpy arrays)."""
    import torch
    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(tx), ty).backward()
        opt.step()
    return step
