"""The paper notebook's training loop in PyTorch: the reference geomtoy is measured against.

This is `optimize` and `ReluOutputModel` of Anthropic's `toy_models.ipynb`, as described
in paper §3.1 and the notebook recipe of docs/paper.md, written out without einops:

* W of shape (I, n, m) (instances, features, hidden), tied; xavier_normal_ on the stacked
  tensor; b_final (I, n) zeros.
* A fresh batch per step: `feat = rand(B, I, n)`, `mask = rand(B, I, n) <= p`,
  `x = where(mask, feat, 0)` (two independent uniforms per element).
* `h = einsum('...if,ifh->...ih', x, W)`, `out = relu(einsum('...ih,ifh->...if', h, W) + b)`.
* `error = importance * (x.abs() - out)**2`, `loss = error.mean over (batch, feature)`
  summed over instances, so every instance gets the gradient of its own mean.
* `torch.optim.AdamW(lr=1e-3)` (weight decay 0.01 by default), the notebook's per-step
  learning-rate assignment (constant schedule), `zero_grad(set_to_none=True)`.

Only the logging (`loss.item()` every 100 steps) is left out of the timed loop, as the
notebook would otherwise sync on it. torch is an optional, bench-only dependency
(`pip install -e .[bench]`, the CPU build).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReluOutputModel(nn.Module):
    """The notebook's `Model`: x' = ReLU(W^T W x + b) for I instances at once."""

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        n_instances: int,
        feature_probability: torch.Tensor,
        importance: torch.Tensor,
    ):
        super().__init__()
        self.n_features, self.n_hidden, self.n_instances = n_features, n_hidden, n_instances
        self.W = nn.Parameter(torch.empty((n_instances, n_features, n_hidden)))
        nn.init.xavier_normal_(self.W)
        self.b_final = nn.Parameter(torch.zeros((n_instances, n_features)))
        self.feature_probability = feature_probability  # (I, 1) or (I, n)
        self.importance = importance  # (n,) or (I, n)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = torch.einsum("...if,ifh->...ih", features, self.W)
        out = torch.einsum("...ih,ifh->...if", hidden, self.W)
        out = out + self.b_final
        return F.relu(out)

    def generate_batch(self, n_batch: int) -> torch.Tensor:
        shape = (n_batch, self.n_instances, self.n_features)
        device = self.W.device
        feat = torch.rand(shape, device=device)
        return torch.where(
            torch.rand(shape, device=device) <= self.feature_probability,
            feat,
            torch.zeros((), device=device),
        )


def constant_lr(step: int, steps: int) -> float:
    return 1.0


def make(
    n_features: int,
    n_hidden: int,
    n_instances: int,
    seed: int = 0,
    feature_probability: float | None = None,
    importance_decay: float = 0.9,
    device: str = "cpu",
):
    """Model and optimizer as the notebook's intro cell builds them (sparsity spread
    log-uniformly over instances when feature_probability is None, importance 0.9**i), on
    `device` ("cpu", or "cuda" as the notebook does when a GPU is there)."""
    torch.manual_seed(seed)
    if feature_probability is None:
        p = 20 ** -torch.linspace(0, 1, n_instances)
    else:
        p = torch.full((n_instances,), float(feature_probability))
    importance = importance_decay ** torch.arange(n_features, dtype=torch.float32)
    model = ReluOutputModel(
        n_features, n_hidden, n_instances, p[:, None].to(device), importance[None, :].to(device)
    ).to(device)
    opt = torch.optim.AdamW(list(model.parameters()), lr=1e-3)
    return model, opt


def optimize(
    model: ReluOutputModel,
    opt: torch.optim.Optimizer,
    steps: int,
    n_batch: int = 1024,
    lr: float = 1e-3,
    lr_scale=constant_lr,
) -> torch.Tensor:
    """`steps` optimizer steps of the notebook loop; returns the last loss (unsynced)."""
    loss = None
    for step in range(steps):
        step_lr = lr * lr_scale(step, steps)
        for group in opt.param_groups:
            group["lr"] = step_lr
        opt.zero_grad(set_to_none=True)
        batch = model.generate_batch(n_batch)
        out = model(batch)
        error = model.importance * (batch.abs() - out) ** 2
        loss = error.mean(dim=(0, 2)).sum()  # einops.reduce(error, 'b i f -> i', 'mean').sum()
        loss.backward()
        opt.step()
    return loss
