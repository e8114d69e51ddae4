"""Reference PyTorch loop of Liu, Liu and Gore 2025 (arXiv 2505.10465): one toy model at a
time, as their experiment scripts train their grid (a loop over widths inside each task).

Per model: W (n, m) ~ N(0, 1/m), b (n,) ~ N(0, 1); per step a fresh batch
x = (rand(B, n) < p) * 2 rand(B, n), x_hat = ReLU(x W W^T + b), MSE loss (mean over batch and
features); their AdamW (betas 0.9/0.999, eps 1e-8) with weight decay on W only, which for a
negative coefficient pulls each feature's row towards norm 1
(W_i += lr wd (1 - 1/(|W_i| + eps)) W_i) and otherwise decays it (W *= 1 - lr wd); the
learning rate set on the parameter groups every step: linear warm-up, then cosine to
0.05 lr. The same recipe as sweeps/scaling_superposition.toml. torch is a bench-only
dependency (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FeatureRecovery(nn.Module):
    """x_hat = ReLU(x W W^T + b), one model; W's rows are the features' vectors."""

    def __init__(self, n: int, m: int):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n, m) / math.sqrt(m))
        self.b = nn.Parameter(torch.randn(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.W @ self.W.T + self.b)


class GrowingAdamW(torch.optim.Optimizer):
    """AdamW whose negative weight decay pulls feature rows to unit norm (Liu et al.)."""

    def __init__(self, groups, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(groups, dict(lr=1e-3, betas=betas, eps=eps, weight_decay=0.0))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            (b1, b2), eps, lr, wd = group["betas"], group["eps"], group["lr"], group["weight_decay"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["t"] = 0
                    state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                state["t"] += 1
                if wd >= 0:
                    p.mul_(1 - lr * wd)
                else:
                    r = p.norm(dim=1, keepdim=True) + eps
                    p.add_(wd * p * (1 - 1 / r), alpha=lr)
                state["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (state["v"].sqrt() / math.sqrt(1 - b2 ** state["t"])).add_(eps)
                p.addcdiv_(state["m"], denom, value=-lr / (1 - b1 ** state["t"]))


def lr_at(step: int, lr: float, steps: int, warmup: int, floor: float = 0.05) -> float:
    """Linear warm-up to lr, then a half cosine down to floor * lr."""
    if step < warmup:
        return lr * step / warmup
    low = floor * lr
    return low + (lr - low) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))


def train(n, m, p, weight_decay, steps, batch, lr=1e-2, warmup=0, total_steps=None, seed=0):
    """One model, `steps` optimizer steps; returns the last training loss."""
    torch.manual_seed(seed)
    model = FeatureRecovery(n, m)
    opt = GrowingAdamW([{"params": [model.W], "weight_decay": weight_decay}, {"params": [model.b]}])
    p = torch.as_tensor(p, dtype=torch.float32)
    total = total_steps or steps
    loss = None
    for step in range(steps):
        x = (torch.rand(batch, n) < p).float() * torch.rand(batch, n) * 2
        for group in opt.param_groups:
            group["lr"] = lr_at(step, lr, total, warmup)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), x)
        loss.backward()
        opt.step()
    return float(loss)
