"""Slow, obviously correct NumPy (float64) references for the engine's math."""

import math

import numpy as np


def forward(kind, W, b, x, W2=None):
    """Model output for a feature-major batch x (n, B)."""
    h = W @ x
    if kind == "relu_output":
        return np.maximum(W.T @ h + b[:, None], 0.0)
    if kind == "linear":
        return W.T @ h + b[:, None]
    if kind == "relu_hidden":
        return np.maximum(W.T @ np.maximum(h, 0.0) + b[:, None], 0.0)
    if kind == "abs":
        return np.maximum(W2 @ np.maximum(h, 0.0) + b[:, None], 0.0)
    raise ValueError(kind)


def loss_and_grad(kind, W, b, x, importance):
    """Importance-weighted MSE (mean over features and batch) and its gradient in W, b.

    Hand-derived for the tied models: with z = W^T h + b, h = W x (relu_hidden: a = ReLU(h)),
    G = dL/dz, dL/dW = a G^T + (mask_h * (W G)) x^T and dL/db = sum_batch G.
    """
    n, B = x.shape
    h = W @ x
    a = np.maximum(h, 0.0) if kind == "relu_hidden" else h
    z = W.T @ a + b[:, None]
    out = z if kind == "linear" else np.maximum(z, 0.0)
    r = out - x
    loss = np.mean(importance[:, None] * r**2)
    G = 2.0 * importance[:, None] * r / (n * B)
    if kind != "linear":
        G = G * (z > 0)
    dA = W @ G
    if kind == "relu_hidden":
        dA = dA * (h > 0)
    dW = a @ G.T + dA @ x.T
    db = G.sum(axis=1)
    return loss, dW, db


class AdamW:
    """torch.optim.AdamW, written out: decoupled decay, then the bias-corrected Adam step."""

    def __init__(self, lr, weight_decay, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.wd, self.b1, self.b2, self.eps = lr, weight_decay, b1, b2, eps
        self.t = 0
        self.m = self.v = None

    def step(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        out = []
        for k, (p, g) in enumerate(zip(params, grads)):
            p = p * (1.0 - self.lr * self.wd)
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            m_hat = self.m[k] / (1 - self.b1**self.t)
            v_hat = self.v[k] / (1 - self.b2**self.t)
            out.append(p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps))
        return out


def abs_loss_and_grad(W1, W2, b, x, importance):
    """The abs model's loss against |x| and its gradient in W1, W2, b (hand-derived)."""
    n, B = x.shape
    pre = W1 @ x
    a = np.maximum(pre, 0.0)
    z = W2 @ a + b[:, None]
    r = np.maximum(z, 0.0) - np.abs(x)
    loss = np.mean(importance[:, None] * r**2)
    G = 2.0 * importance[:, None] * r / (n * B) * (z > 0)
    dW2 = G @ a.T
    dW1 = ((W2.T @ G) * (pre > 0)) @ x.T
    return loss, dW1, dW2, G.sum(axis=1)


def sae_forward(W_enc, b_enc, W_dec, b_dec, h, activation="relu", k=1):
    """SAE code f (width, B) and reconstruction h_hat (m, B) of h (m, B); unit decoder
    columns; topk keeps the k largest pre-activations per sample, batchtopk k * B overall."""
    pre = W_enc @ (h - b_dec[:, None]) + b_enc[:, None]
    keep = np.ones_like(pre, dtype=bool)
    if activation == "topk":
        order = np.argsort(-pre, axis=0)
        keep = np.zeros_like(keep)
        np.put_along_axis(keep, order[:k], True, axis=0)
    elif activation == "batchtopk":
        flat = np.sort(pre.ravel())[::-1]
        keep = pre >= flat[k * pre.shape[1] - 1]
    f = np.where(keep, np.maximum(pre, 0.0), 0.0)
    D = W_dec / np.linalg.norm(W_dec, axis=0, keepdims=True)
    return pre, f, D @ f + b_dec[:, None]


def sae_loss_and_grad(W_enc, b_enc, W_dec, b_dec, h, l1, activation="relu", k=1):
    """Loss mean_B [mean_m (h_hat - h)^2 + l1 * sum_j |f_j|] and its gradient, by hand.

    With D = W_dec / ||W_dec|| (columns), r = h_hat - h: dL/dh_hat = 2 r / (m B);
    dL/dD = G f^T; dL/dW_dec_j = (g_j - D_j (D_j . g_j)) / ||W_dec_j||; through the
    active pre-activations dL/dpre = D^T G + l1 / B; then W_enc, b_enc and b_dec (both
    as the output bias and inside h - b_dec)."""
    m, B = h.shape
    pre, f, h_hat = sae_forward(W_enc, b_enc, W_dec, b_dec, h, activation, k)
    norms = np.linalg.norm(W_dec, axis=0, keepdims=True)
    D = W_dec / norms
    r = h_hat - h
    loss = np.sum(r**2) / (m * B) + l1 * np.sum(np.abs(f)) / B
    G = 2.0 * r / (m * B)
    g = G @ f.T
    dW_dec = (g - D * np.sum(D * g, axis=0, keepdims=True)) / norms
    active = f > 0
    G_pre = np.where(active, D.T @ G + l1 / B, 0.0)
    dW_enc = G_pre @ (h - b_dec[:, None]).T
    db_enc = G_pre.sum(axis=1)
    db_dec = G.sum(axis=1) - W_enc.T @ G_pre.sum(axis=1)
    return loss, (dW_enc, db_enc, dW_dec, db_dec)


def activation(name, z):
    """The output nonlinearity in float64: ReLU, or the exact GELU z Phi(z)."""
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "gelu":
        erf = np.vectorize(math.erf)
        return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))
    raise ValueError(name)


def forward_with(kind, activation_name, W, b, x, W2=None):
    """Model output with a chosen output nonlinearity (linear has none)."""
    h = W @ x
    if kind == "linear":
        return W.T @ h + b[:, None]
    hidden = h if kind == "relu_output" else np.maximum(h, 0.0)
    out = (W2 if kind == "abs" else W.T) @ hidden + b[:, None]
    return activation(activation_name, out)
