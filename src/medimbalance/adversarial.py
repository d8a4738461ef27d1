"""Adversarial training for segmentation, symmetric or asymmetric (Li, Kamnitsas and Glocker,
"Analyzing Overfitting under Class Imbalance in Neural Networks for Image Segmentation", IEEE
TMI 2021), with the virtual-adversarial perturbation of Miyato et al. (IEEE TPAMI 2019).

After each ordinary step, the batch is perturbed and the network takes a second step on the
perturbed images, as the authors' nnU-Net fork does:

1. ``d = ξ · normalise(N(0, I))`` (a random direction, tiny);
2. the gradient ``g`` of the cross-entropy of ``f(x + d)`` with respect to ``d`` — over every
   voxel (``symmetric``), or over the foreground voxels only (``asymmetric``: the labels of the
   background are zeroed, so only the rare classes are pushed towards the decision boundary);
3. ``r = ε · normalise(g)``, and a step on the method's loss at ``x + r``.

``normalise`` divides each image's vector by its largest absolute entry, then by its L2 norm
(Miyato et al.'s code; the authors' PyTorch port divides by the largest entry without the
absolute value). The authors' settings are ``ε ≈ 10`` and ``ξ = 1e-5``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .targets import one_hot

ADVERSARIAL = ("none", "symmetric", "asymmetric")


def normalise(d: torch.Tensor) -> torch.Tensor:
    """Each image's ``d`` over its largest absolute entry, then over its L2 norm."""
    axes = tuple(range(1, d.ndim))
    d = d / (1e-12 + d.abs().amax(dim=axes, keepdim=True))
    return d / torch.sqrt(1e-6 + d.pow(2).sum(dim=axes, keepdim=True))


class AdversarialPerturbation:
    """The perturbation ``r`` of a batch (module docstring); ``kind`` ``symmetric`` or
    ``asymmetric``."""

    def __init__(self, kind: str, eps: float = 10.0, xi: float = 1e-5) -> None:
        if kind not in ADVERSARIAL[1:]:
            raise ValueError(
                f"adversarial: unknown {kind!r}; valid choices: {', '.join(ADVERSARIAL)}"
            )
        if eps <= 0 or xi <= 0:
            raise ValueError(f"adversarial_eps and adversarial_xi must be > 0, got {eps}, {xi}")
        self.kind, self.eps, self.xi = kind, eps, xi

    def direction_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The cross-entropy whose gradient gives the direction: over the voxels of every class,
        or (asymmetric) of the foreground classes only; the sum over voxels divided by their
        number, as the authors' ``advCrossentropyND``."""
        labels = one_hot(targets, logits.shape[1], logits.dtype)
        if self.kind == "asymmetric":
            labels = torch.cat([torch.zeros_like(labels[:, :1]), labels[:, 1:]], 1)
        return -(labels * F.log_softmax(logits, dim=1)).sum(1).mean()

    def __call__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=generator).to(images.device, images.dtype)
        d = (self.xi * normalise(noise)).requires_grad_(True)
        loss = self.direction_loss(model(images + d).float(), targets)
        (grad,) = torch.autograd.grad(loss, d)
        return self.eps * normalise(grad.detach())


def build_adversarial(kind: str, eps: float, xi: float) -> AdversarialPerturbation | None:
    """The perturbation a method asks for (``none``: no adversarial step)."""
    if kind not in ADVERSARIAL:
        raise ValueError(f"adversarial: unknown {kind!r}; valid choices: {', '.join(ADVERSARIAL)}")
    return None if kind == "none" else AdversarialPerturbation(kind, eps, xi)
