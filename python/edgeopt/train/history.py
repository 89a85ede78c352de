"""History: what fit returns and stores in its checkpoints, one entry per epoch (own module, so
that checkpoint.py can check a saved history without importing fit)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class History:
    epoch: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    train_loss: list = dataclasses.field(default_factory=list)
    train_acc: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    val_acc: list = dataclasses.field(default_factory=list)
    images_per_s: list = dataclasses.field(default_factory=list)
    seconds: list = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        head = f"{'epoch':>5} {'lr':>8} {'loss':>8} {'acc':>7} {'val_loss':>9} {'val_acc':>8} {'img/s':>8}"
        rows = [head]
        for i, e in enumerate(self.epoch):
            vl = self.val_loss[i] if self.val_loss else float("nan")
            va = self.val_acc[i] if self.val_acc else float("nan")
            rows.append(f"{e:>5} {self.lr[i]:>8.4g} {self.train_loss[i]:>8.4f} {self.train_acc[i]:>7.4f} "
                        f"{vl:>9.4f} {va:>8.4f} {self.images_per_s[i]:>8.0f}")
        return "\n".join(rows)
