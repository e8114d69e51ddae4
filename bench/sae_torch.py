"""Reference PyTorch loop for SAEs on toy-model activations: one SAE at a time, as SAELens
trains one (plain 2-D weights, `torch.optim.Adam`), looped over the SAEs of a sweep.

Per step: a fresh batch of sparse toy features x (B, n) (two `torch.rand` draws per
element, as ARENA's `generate_batch`), the hidden activations h = x W of the SAE's frozen
toy model W (n, m), then

    z = (h - b_dec) W_enc + b_enc,   f = act(z),   h_hat = f W_dec_unit + b_dec
    loss = mean_B [ mean_m (h_hat - h)^2 + l1 * sparsity(f) ]

with W_dec_unit the decoder rows scaled to unit norm and the stored rows renormalised after
each `Adam(lr=1e-3)` step: the model and loss of geomtoy.sae for the same `activation`,
without resampling (which both sides run rarely). Activations:

  relu                  ReLU, sparsity sum |f|.
  topk                  ReLU of each sample's k largest z (`torch.topk`).
  batchtopk             the k * B largest z of the batch (`torch.topk` over B * width).
  jumprelu              f = z H(z - theta), theta = exp(log_threshold) per latent, sparsity
                        the L0 sum H(z - theta), with the rectangle-kernel straight-through
                        pseudo-derivatives of Rajamanoharan et al. 2024 as autograd
                        Functions (as SAELens writes them; geomtoy.sae.model.jump_l0).
  matryoshka_batchtopk  BatchTopK, and the sum over the nested prefixes of the latents of
                        each prefix's reconstruction error (geomtoy.sae.model.nested_recon).

torch is a bench-only dependency (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

from math import log

import torch
from torch import nn

BANDWIDTH, INIT_THRESHOLD = 0.05, 0.01  # geomtoy.sae.model's JumpReLU constants
FRACTIONS = (1 / 32, 1 / 8, 1 / 2, 1.0)  # geomtoy.sae.model.MATRYOSHKA_FRACTIONS
ACTIVATIONS = ("relu", "topk", "batchtopk", "jumprelu", "matryoshka_batchtopk")


def _rectangle(z: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    return ((z - theta).abs() < BANDWIDTH / 2).to(z.dtype) / BANDWIDTH


class Jump(torch.autograd.Function):
    """z H(z - theta); d/dz = H, d/dtheta = -(theta / eps) K((z - theta) / eps)."""

    @staticmethod
    def forward(ctx, z, theta):
        ctx.save_for_backward(z, theta)
        return z * (z > theta)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        return g * (z > theta), (-g * theta * _rectangle(z, theta)).sum(0)


class Step(torch.autograd.Function):
    """H(z - theta); no gradient to z, d/dtheta = -(1 / eps) K((z - theta) / eps)."""

    @staticmethod
    def forward(ctx, z, theta):
        ctx.save_for_backward(z, theta)
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        return None, (-g * _rectangle(z, theta)).sum(0)


class ToySAE(nn.Module):
    """One SAE of `width` latents on the m-dimensional hidden activations of one toy model
    W (n, m)."""

    def __init__(self, W: torch.Tensor, width: int, feature_probability: float, l1: float,
                 activation: str = "relu", k: int = 2):  # fmt: skip
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")
        n, m = W.shape
        self.W_toy, self.p, self.l1, self.activation, self.k = (
            W,
            feature_probability,
            l1,
            activation,
            k,
        )
        W_dec = torch.randn((width, m))
        self.W_dec = nn.Parameter(W_dec / W_dec.norm(dim=-1, keepdim=True))
        self.W_enc = nn.Parameter(self.W_dec.detach().T.clone())
        self.b_enc = nn.Parameter(torch.zeros(width))
        self.b_dec = nn.Parameter(torch.zeros(m))
        if activation == "jumprelu":
            self.log_threshold = nn.Parameter(torch.full((width,), log(INIT_THRESHOLD)))
        self.prefixes = sorted({max(1, round(width * q)) for q in FRACTIONS} | {width})

    def generate_batch(self, n_batch: int) -> torch.Tensor:
        feat = torch.rand((n_batch, self.W_toy.shape[0]))
        x = feat * (torch.rand_like(feat) <= self.p)
        return x @ self.W_toy

    def encode(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, per-sample sparsity) of h (B, m)."""
        z = (h - self.b_dec) @ self.W_enc + self.b_enc
        if self.activation == "jumprelu":
            theta = self.log_threshold.exp()
            return Jump.apply(z, theta), Step.apply(z, theta).sum(-1)
        if self.activation == "topk":
            top = z.topk(self.k, dim=-1)
            f = torch.zeros_like(z).scatter(-1, top.indices, torch.relu(top.values))
        elif self.activation in ("batchtopk", "matryoshka_batchtopk"):
            top = z.flatten().topk(self.k * z.shape[0])
            f = torch.zeros_like(z).flatten().scatter(0, top.indices, torch.relu(top.values))
            f = f.view_as(z)
        else:
            f = torch.relu(z)
        return f, f.sum(-1)  # f >= 0: |f| is f

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        W_dec = self.W_dec / (self.W_dec.norm(dim=-1, keepdim=True) + 1e-8)
        f, sparsity = self.encode(h)
        if self.activation != "matryoshka_batchtopk":
            recon = (f @ W_dec + self.b_dec - h).pow(2).mean(-1)
        else:  # each prefix adds its latents' rows to the previous prefix's h_hat
            h_hat, recon, start = self.b_dec.expand_as(h), 0.0, 0
            for end in self.prefixes:
                h_hat = h_hat + f[:, start:end] @ W_dec[start:end]
                recon, start = recon + (h_hat - h).pow(2).mean(-1), end
        return (recon + self.l1 * sparsity).mean()


def make(n_features: int, n_hidden: int, width: int, seed: int = 0, activation: str = "relu",
         k: int = 2, l1: float = 0.01):  # fmt: skip
    """One SAE on a random unit-row toy model W (n, m), and its Adam."""
    torch.manual_seed(seed)
    W = torch.randn((n_features, n_hidden))
    W = W / W.norm(dim=-1, keepdim=True)
    model = ToySAE(W, width, feature_probability=0.05, l1=l1, activation=activation, k=k)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def optimize(model: ToySAE, opt: torch.optim.Optimizer, steps: int, n_batch: int = 1024):
    """`steps` optimizer steps, the decoder rows renormalised after each; returns the last
    loss (unsynced)."""
    loss = None
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = model(model.generate_batch(n_batch))
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.W_dec /= model.W_dec.norm(dim=-1, keepdim=True) + 1e-8
    return loss
