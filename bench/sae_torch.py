"""Reference PyTorch loop for SAEs on toy-model activations, as ARENA's superposition chapter
writes it: one module holds I SAEs along an instance axis of every tensor, einsums over it.

Per step: a fresh batch of sparse toy features x (B, I, n) (two `torch.rand` draws per
element, as the toy model's `generate_batch`), hidden activations h = einsum(x, W) of a
frozen toy model W (I, n, m), then the SAE f = ReLU((h - b_dec) W_enc + b_enc),
h_hat = f W_dec_normalized + b_dec, loss = mean_B [mean_m (h_hat - h)^2 + l1 * sum |f|]
summed over instances, `torch.optim.Adam(lr=1e-3)`. The same model and loss as
geomtoy.sae with activation "relu" and no resampling (which both sides run rarely).

`activation="jumprelu"`: f = z H(z - theta), theta = exp(log_threshold) per latent, the L0
penalty l1 * sum H(z - theta), with the rectangle-kernel straight-through pseudo-
derivatives of Rajamanoharan et al. 2024 as autograd Functions (geomtoy.sae.model.jump,
step). `activation="matryoshka_batchtopk"`: BatchTopK (the k * B largest of each
instance's batch, `torch.topk`) and the sum of the nested prefixes' reconstruction errors
(geomtoy.sae.model.nested_recon). torch is a bench-only dependency
(`pip install -e ".[bench]"`).
"""

from __future__ import annotations

from math import log as np_log

import torch
from torch import nn

BANDWIDTH, INIT_THRESHOLD, K = 0.05, 0.01, 2  # geomtoy.sae.model's JumpReLU constants; k
FRACTIONS = (1 / 32, 1 / 8, 1 / 2, 1.0)  # geomtoy.sae.model.MATRYOSHKA_FRACTIONS


class Jump(torch.autograd.Function):
    """z H(z - theta); d/dz = H, d/dtheta = -(theta / eps) K((z - theta) / eps)."""

    @staticmethod
    def forward(ctx, z, theta):
        ctx.save_for_backward(z, theta)
        return torch.where(z > theta, z, torch.zeros(()))

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        kernel = ((z - theta).abs() < BANDWIDTH / 2).to(z.dtype) / BANDWIDTH
        return g * (z > theta), (-g * theta * kernel).sum(0)


class Step(torch.autograd.Function):
    """H(z - theta); no gradient to z, d/dtheta = -(1 / eps) K((z - theta) / eps)."""

    @staticmethod
    def forward(ctx, z, theta):
        ctx.save_for_backward(z, theta)
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        kernel = ((z - theta).abs() < BANDWIDTH / 2).to(z.dtype) / BANDWIDTH
        return None, (-g * kernel).sum(0)


class ToySAE(nn.Module):
    """I SAEs of `width` latents on m-dimensional hidden activations of I toy models."""

    def __init__(self, W: torch.Tensor, width: int, feature_probability: float, l1: float,
                 activation: str = "relu"):  # fmt: skip
        super().__init__()
        I, n, m = W.shape
        self.W_toy, self.p, self.l1, self.activation = W, feature_probability, l1, activation
        self.W_enc = nn.Parameter(nn.init.kaiming_uniform_(torch.empty((I, m, width))))
        self.W_dec = nn.Parameter(nn.init.kaiming_uniform_(torch.empty((I, width, m))))
        self.b_enc = nn.Parameter(torch.zeros((I, width)))
        self.b_dec = nn.Parameter(torch.zeros((I, m)))
        self.log_threshold = nn.Parameter(torch.full((I, width), float(np_log(INIT_THRESHOLD))))
        self.prefixes = sorted({max(1, round(width * q)) for q in FRACTIONS} | {width})

    def generate_batch(self, n_batch: int) -> torch.Tensor:
        I, n, _ = self.W_toy.shape
        feat = torch.rand((n_batch, I, n))
        x = torch.where(torch.rand((n_batch, I, n)) <= self.p, feat, torch.zeros(()))
        with torch.no_grad():
            return torch.einsum("bif,ifh->bih", x, self.W_toy)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        W_dec = self.W_dec / (self.W_dec.norm(dim=-1, keepdim=True) + 1e-8)
        z = torch.einsum("bih,ihw->biw", h - self.b_dec, self.W_enc) + self.b_enc
        if self.activation == "jumprelu":
            theta = self.log_threshold.exp()
            f = Jump.apply(z, theta)
            sparsity = Step.apply(z, theta).sum(-1)
        else:
            f = torch.relu(z)
            sparsity = f.abs().sum(-1)
        if self.activation == "matryoshka_batchtopk":
            return self._nested(h, W_dec, f)
        h_hat = torch.einsum("biw,iwh->bih", f, W_dec) + self.b_dec
        per_sample = (h_hat - h).pow(2).mean(-1) + self.l1 * sparsity  # (B, I)
        return per_sample.mean(0).sum()

    def _nested(self, h, W_dec, f):
        """BatchTopK per instance, then the summed prefix reconstruction errors."""
        B, I, w = f.shape
        flat = f.transpose(0, 1).reshape(I, B * w)
        keep = torch.zeros_like(flat).scatter_(1, flat.topk(K * B, dim=1).indices, 1.0)
        f = (flat * keep).reshape(I, B, w).transpose(0, 1)
        h_hat, total, start = self.b_dec.expand_as(h), 0.0, 0
        for end in self.prefixes:
            part = torch.einsum("biw,iwh->bih", f[..., start:end], W_dec[:, start:end])
            h_hat = h_hat + part
            total, start = total + (h_hat - h).pow(2).mean(-1), end
        return (total + self.l1 * f.abs().sum(-1)).mean(0).sum()


def make(n_instances: int, n_features: int, n_hidden: int, width: int, seed: int = 0,
         activation: str = "relu"):  # fmt: skip
    torch.manual_seed(seed)
    W = torch.randn((n_instances, n_features, n_hidden))
    W = W / W.norm(dim=-1, keepdim=True)
    model = ToySAE(W, width, feature_probability=0.05, l1=0.01, activation=activation)
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
