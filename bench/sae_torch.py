"""Reference PyTorch loop for SAEs on toy-model activations, as ARENA's superposition chapter
writes it: one module holds I SAEs along an instance axis of every tensor, einsums over it.

Per step: a fresh batch of sparse toy features x (B, I, n) (two `torch.rand` draws per
element, as the toy model's `generate_batch`), hidden activations h = einsum(x, W) of a
frozen toy model W (I, n, m), then the SAE f = ReLU((h - b_dec) W_enc + b_enc),
h_hat = f W_dec_normalized + b_dec, loss = mean_B [mean_m (h_hat - h)^2 + l1 * sum |f|]
summed over instances, `torch.optim.Adam(lr=1e-3)`. The same model and loss as
geomtoy.sae with activation "relu" and no resampling (which both sides run rarely).
torch is a bench-only dependency (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import torch
from torch import nn


class ToySAE(nn.Module):
    """I SAEs of `width` latents on m-dimensional hidden activations of I toy models."""

    def __init__(self, W: torch.Tensor, width: int, feature_probability: float, l1: float):
        super().__init__()
        I, n, m = W.shape
        self.W_toy, self.p, self.l1 = W, feature_probability, l1
        self.W_enc = nn.Parameter(nn.init.kaiming_uniform_(torch.empty((I, m, width))))
        self.W_dec = nn.Parameter(nn.init.kaiming_uniform_(torch.empty((I, width, m))))
        self.b_enc = nn.Parameter(torch.zeros((I, width)))
        self.b_dec = nn.Parameter(torch.zeros((I, m)))

    def generate_batch(self, n_batch: int) -> torch.Tensor:
        I, n, _ = self.W_toy.shape
        feat = torch.rand((n_batch, I, n))
        x = torch.where(torch.rand((n_batch, I, n)) <= self.p, feat, torch.zeros(()))
        with torch.no_grad():
            return torch.einsum("bif,ifh->bih", x, self.W_toy)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        W_dec = self.W_dec / (self.W_dec.norm(dim=-1, keepdim=True) + 1e-8)
        f = torch.relu(torch.einsum("bih,ihw->biw", h - self.b_dec, self.W_enc) + self.b_enc)
        h_hat = torch.einsum("biw,iwh->bih", f, W_dec) + self.b_dec
        per_sample = (h_hat - h).pow(2).mean(-1) + self.l1 * f.abs().sum(-1)  # (B, I)
        return per_sample.mean(0).sum()


def make(n_instances: int, n_features: int, n_hidden: int, width: int, seed: int = 0):
    torch.manual_seed(seed)
    W = torch.randn((n_instances, n_features, n_hidden))
    W = W / W.norm(dim=-1, keepdim=True)
    model = ToySAE(W, width, feature_probability=0.05, l1=0.01)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def optimize(model: ToySAE, opt: torch.optim.Optimizer, steps: int, n_batch: int = 1024):
    """`steps` optimizer steps; returns the last loss (unsynced)."""
    loss = None
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = model(model.generate_batch(n_batch))
        loss.backward()
        opt.step()
    return loss
