"""Tiny float64 models and data shared by the attribution tests, and the explorer's tiny shortcut
data (not a test module)."""
from types import SimpleNamespace

import torch
from torch import nn


class TinyCNN(nn.Module):
    """conv → norm → ReLU → maxpool → conv → norm → ReLU → GAP → linear; ~1k parameters."""

    def __init__(self, norm: str = "batch", in_channels: int = 1, num_classes: int = 4, width: int = 4):
        super().__init__()

        def n(c):
            return nn.BatchNorm2d(c) if norm == "batch" else nn.GroupNorm(2, c)

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), n(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), n(2 * width), nn.ReLU(),
        )
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def make_model(norm="batch", seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    m = TinyCNN(norm, **kw).to(dtype)
    if norm == "batch":  # non-trivial running statistics, so eval-mode BN is not the identity
        m.train()
        with torch.no_grad():
            for _ in range(3):
                m(torch.rand(16, m.features[0].in_channels, 8, 8, dtype=dtype))
    return m.eval()


def make_data(n=6, c=1, hw=8, k=4, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, hw, hw, generator=g, dtype=dtype), torch.randint(0, k, (n,), generator=g)


def explorer_data(dtype=torch.float32) -> SimpleNamespace:
    """A tiny shortcut setting for the explorer: ``x`` ``[40, 1, 8, 8]`` training images with labels
    ``y`` ``[40]`` (4 classes); the class-0 images among the first 30 (``patched`` ``[40]`` bool) carry a
    white 3×3 patch at the top-left (``masks`` ``[40, 8, 8]``); ``xt`` ``[12, 1, 8, 8]`` test images with
    labels ``yt`` ``[12]`` and ``xt_patched``, the same with the patch; ``model`` a GroupNorm TinyCNN."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 8, 8, generator=g, dtype=dtype)
    y = torch.arange(40) % 4
    patched = (y == 0) & (torch.arange(40) < 30)
    masks = torch.zeros(40, 8, 8, dtype=torch.bool)
    masks[patched, :3, :3] = True
    x[masks.unsqueeze(1)] = 1.0
    xt = torch.rand(12, 1, 8, 8, generator=g, dtype=dtype)
    xt_patched = xt.clone()
    xt_patched[:, :, :3, :3] = 1.0
    return SimpleNamespace(x=x, y=y, patched=patched, masks=masks, xt=xt, xt_patched=xt_patched, yt=torch.arange(12) % 4,
                           model=make_model("group", dtype=dtype))


def named_params(model, params=None):
    """``[(name, parameter)]`` of ``model`` restricted to ``params`` (names or module prefixes; ``None`` = all)."""
    return [(n, p) for n, p in model.named_parameters()
            if params is None or any(n == q or n.startswith(q + ".") for q in params)]


def loop_grads(model, x, y, params=None):
    """Reference per-sample gradients: one autograd backward per example."""
    ps = [p for _, p in named_params(model, params)]
    rows = []
    for i in range(len(x)):
        loss = nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        gs = torch.autograd.grad(loss, ps)
        rows.append(torch.cat([g.reshape(-1) for g in gs]))
    return torch.stack(rows)
