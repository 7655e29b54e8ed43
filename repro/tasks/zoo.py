"""Six small classifiers for 8x8 digits (input ``[B, 64]`` standardised pixels, 10 classes).

The "ghosts of softmax" figures 1, 7 and 10 compare six architectures whose generator code the
authors never released; these are the documented reconstructions (paper/ghosts_notes.md §4.3):

=================  ==========================================================================
``linear``         Linear(64, 10)
``mlp``            64-128-128-10, GELU
``cnn``            Conv2d(1,16,3,p1)-GELU-MaxPool2, Conv2d(16,32,3,p1)-GELU-MaxPool2, 128-64-10 GELU
``mlp_ln``         3 x [Linear(., 64) + LayerNorm + GELU], head 64-10 (archgrid's MLP+LN)
``cnn_bn``         the image as a length-64 signal: Conv1d(1,32,3)+BN+ReLU, Conv1d(32,32,3)+BN+ReLU,
                   global average pool, head 32-10 (archgrid's CNN+BN)
``transformer``    8 row tokens (Linear 8-32) + CLS + learned positions, 2 pre-LN blocks with 4-head
                   self-attention and FFN 32-128-32 GELU, final LN, head on CLS (tfmbottlenecks)
=================  ==========================================================================

Every model is initialised from an explicit ``torch.Generator`` (:func:`build`), never from the
global RNG.  The transformer's attention is written out (no ``nn.MultiheadAttention``) so that
``torch.func`` transforms and the attention-logit radius of Table 2 can see its pre-softmax logits.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ARCHITECTURES", "build", "TinyTransformer", "init_from_generator"]

ARCHITECTURES = ("linear", "mlp", "cnn", "mlp_ln", "cnn_bn", "transformer")
PRETTY = {"linear": "Linear", "mlp": "MLP", "cnn": "CNN", "mlp_ln": "MLP+LN", "cnn_bn": "CNN+BN",
          "transformer": "TinyTransformer"}


class _Image(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Attention(nn.Module):
    """Multi-head self-attention without qkv bias; ``last_logits`` keeps the pre-softmax scores
    when ``keep_logits`` is set (for the attention radius)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.keep_logits = False
        self.last_logits: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # [b, h, n, n]
        if self.keep_logits:
            self.last_logits = logits
        out = torch.softmax(logits, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class TinyTransformer(nn.Module):
    """8x8 digit -> 8 row tokens + CLS -> 2 pre-LN blocks -> LN -> head on CLS."""

    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 4, ffn: int = 128, n_classes: int = 10):
        super().__init__()
        self.embed = nn.Linear(8, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 9, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, ffn) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x.reshape(x.shape[0], 8, 8))
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)[:, 0])


def _architecture(name: str) -> nn.Module:
    gelu = nn.GELU
    if name == "linear":
        return nn.Sequential(nn.Linear(64, 10))
    if name == "mlp":
        return nn.Sequential(nn.Linear(64, 128), gelu(), nn.Linear(128, 128), gelu(), nn.Linear(128, 10))
    if name == "cnn":
        return nn.Sequential(_Image((1, 8, 8)), nn.Conv2d(1, 16, 3, padding=1), gelu(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), gelu(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(128, 64), gelu(), nn.Linear(64, 10))
    if name == "mlp_ln":
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Linear(64, 64), nn.LayerNorm(64), gelu()]
        return nn.Sequential(*layers, nn.Linear(64, 10))
    if name == "cnn_bn":
        return nn.Sequential(_Image((1, 64)), nn.Conv1d(1, 32, 3), nn.BatchNorm1d(32), nn.ReLU(),
                             nn.Conv1d(32, 32, 3), nn.BatchNorm1d(32), nn.ReLU(),
                             nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 10))
    if name == "transformer":
        return TinyTransformer()
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {name!r}")


@torch.no_grad()
def init_from_generator(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """PyTorch-default-like initialisation drawn from ``generator``: weights and biases of
    linear/conv layers ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, norm scales 1 and shifts 0,
    transformer CLS/positions ``N(0, 0.02^2)``."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            module.weight.copy_(torch.empty_like(module.weight).uniform_(-bound, bound, generator=generator))
            if module.bias is not None:
                module.bias.copy_(torch.empty_like(module.bias).uniform_(-bound, bound, generator=generator))
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            if module.weight is not None:
                module.weight.fill_(1.0)
                module.bias.zero_()
        elif isinstance(module, TinyTransformer):
            module.cls.copy_(0.02 * torch.randn(module.cls.shape, generator=generator))
            module.pos.copy_(0.02 * torch.randn(module.pos.shape, generator=generator))
    return model


def build(name: str, generator: torch.Generator, device=None) -> nn.Module:
    """The architecture ``name`` (see the module docstring), initialised from ``generator``."""
    return init_from_generator(_architecture(name), generator).to(device)
