r"""The optimiser and learning-rate schedule of MAE pretraining (MAE Table 8).

AdamW with ``betas=(0.9, 0.95)``; weight decay only on weight matrices; a peak learning rate
from the linear scaling rule $\mathrm{lr} = \mathrm{blr} \times \mathrm{batch} / 256$; a linear
warmup to the peak, then a half cosine down to ``min_lr``:

$$
\mathrm{lr}(t) = \begin{cases}
\mathrm{lr} \cdot t / T_w & t < T_w \\
\mathrm{lr}_{\min} + (\mathrm{lr} - \mathrm{lr}_{\min}) \cdot \tfrac12
\left(1 + \cos \pi \frac{t - T_w}{T - T_w}\right) & t \ge T_w
\end{cases}
$$

with $t$ the optimizer step, $T_w$ the warmup steps and $T$ all steps. The official code
(``util/lr_sched.py``) evaluates the same formula at fractional epochs every iteration; here it
is evaluated per optimizer step, which is the same schedule.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["cosine_factor", "make_optimizer", "make_scheduler", "param_groups"]


_NO_DECAY_NAMES = ("cls_token", "mask_token", "pos_embed", "pos_embed_spatial", "pos_embed_temporal")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weight matrices with ``weight_decay``, everything else without.

    Biases, LayerNorm weights (all 1-D parameters) and the learned tokens (``cls_token``,
    ``mask_token``) are not decayed; the fixed position embeddings of the ViT MAE are not trained
    at all. The official MAE code (timm's ``add_weight_decay``) also exempts 1-D parameters and
    biases but does decay the two tokens; we follow the common rule of leaving tokens alone.
    MAE-Hiera learns its position embeddings (``pos_embed``, ``decoder_pos_embed``; video:
    ``pos_embed_spatial``, ``pos_embed_temporal``); they are not decayed either (official
    Hiera's ``no_weight_decay`` lists the encoder's).

    Args:
        model: the MAE.
        weight_decay: decay for the weight matrices.

    Returns:
        ``[{"params": decayed, "weight_decay": wd}, {"params": others, "weight_decay": 0.0}]``.

    Examples:
        >>> from refimpl.mae import mae_vit_tiny_patch16
        >>> decay, no_decay = param_groups(mae_vit_tiny_patch16(img_size=32, depth=1), 0.05)
        >>> all(p.ndim >= 2 for p in decay["params"]), no_decay["weight_decay"]
        (True, 0.0)
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name.endswith(_NO_DECAY_NAMES):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float], fused: bool = False
) -> torch.optim.AdamW:
    """AdamW over [`param_groups`][refimpl.train.schedule.param_groups].

    Args:
        model: the MAE.
        lr: peak learning rate (the scheduler multiplies it by a factor in ``[0, 1]``).
        weight_decay: decay of the weight matrices.
        betas: AdamW's ``(beta1, beta2)``.
        fused: use the fused CUDA kernel (one launch for all parameters).

    Returns:
        The optimiser.
    """
    groups = param_groups(model, weight_decay)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=True if fused else None)


def cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """The schedule above divided by the peak: linear warmup from 0, then a half cosine to ``min_ratio``.

    Args:
        step: optimizer steps done, ``t``.
        warmup_steps: ``T_w``.
        total_steps: ``T``.
        min_ratio: ``min_lr / lr``.

    Returns:
        A factor in ``[0, 1]``.

    Examples:
        >>> [round(cosine_factor(t, 2, 6), 3) for t in range(7)]
        [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < warmup_steps:
        return step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying [`cosine_factor`][refimpl.train.schedule.cosine_factor] per optimizer step.

    Its ``state_dict()`` is plain data (the step count), so it travels in a ``weights_only``
    checkpoint; the function itself is rebuilt from the config on resume.
    """

    def factor(step: int) -> float:
        return cosine_factor(step, warmup_steps, total_steps, min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
