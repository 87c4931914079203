"""The Stage-1 objectives and their validation metrics, on one forward pass."""

import torch
import torch.nn.functional as F


def soft_token_targets(tokens: torch.Tensor, bins: int, sigma_bins: float) -> torch.Tensor:
    """Return [..., bins] target distributions: a Gaussian of `sigma_bins` around each token.

    Neighbouring bins are neighbouring joint angles, so a label one bin off is nearly right;
    hard one-hot targets call it as wrong as the far end of the range. The Gaussian is cut at
    the range's ends and renormalised. sigma_bins <= 0 gives the one-hot targets.
    """
    centres = torch.arange(bins, device=tokens.device, dtype=torch.float32)
    if sigma_bins <= 0:
        return F.one_hot(tokens, bins).float()
    weights = torch.exp(-0.5 * ((centres - tokens.unsqueeze(-1).float()) / sigma_bins) ** 2)
    return weights / weights.sum(-1, keepdim=True)


def token_cross_entropy(logits: torch.Tensor, tokens: torch.Tensor,
                        sigma_bins: float = 0.0) -> torch.Tensor:
    """Return the cross-entropy [N] of logits [N, bins] against (soft) targets of tokens [N].

    The policy stays a categorical over bins (Stage 2 samples it and needs its log-probability);
    only the target it is fitted to is smoothed.
    """
    if sigma_bins <= 0:
        return F.cross_entropy(logits, tokens, reduction='none')
    targets = soft_token_targets(tokens, logits.shape[-1], sigma_bins)
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1)


def grasp_losses(prediction: torch.Tensor, target_m: torch.Tensor, scale_m: float) -> dict:
    """Return the grasp loss (MSE in units of `scale_m`) and the mean error [cm] per axis.

    prediction [B, 4] is in units of scale_m; target_m [B, 4] in metres with NaN where an arm
    has no grasp. Only finite targets count; with none, both values are 0 (no gradient).
    """
    known = torch.isfinite(target_m)
    count = known.sum().clamp_min(1)
    error = torch.where(known, prediction.float() - torch.nan_to_num(target_m) / scale_m, 0.0)
    return {'grasp_loss': (error ** 2).sum() / count,
            'grasp_error_cm': error.abs().sum() / count * scale_m * 100.0}


def sft_losses(action_logits, steps_logits, batch, steps_values: torch.Tensor,
               soft_sigma_bins: float = 0.0, grasp=None, grasp_scale_m: float = 0.1) -> dict:
    """Return BC and steps-to-go cross-entropies plus accuracy and MAE [ticks].

    Rows [0, bc_rows) of the batch train behaviour cloning, the rest train steps-to-go, so each
    objective gets half of every batch (the paper's even split). Action tokens past an episode's
    end are masked out: what the robot would have done after the episode is unknown. With a
    grasp prediction [B, 4] (every row), the grasp loss and error join the result.
    """
    bc = slice(0, batch.bc_rows)
    st = slice(batch.bc_rows, None)
    logits = action_logits[bc].float()
    targets = batch.action_tokens[bc]
    mask = batch.action_mask[bc].float()
    token_loss = token_cross_entropy(logits.flatten(0, 1), targets.flatten(), soft_sigma_bins)
    denom = mask.sum().clamp_min(1.0)
    bc_loss = (token_loss * mask.flatten()).sum() / denom
    correct = (logits.argmax(-1) == targets).float()
    steps_logits = steps_logits[st].float()
    steps_loss = F.cross_entropy(steps_logits, batch.steps_bins[st])
    expected = steps_logits.softmax(-1) @ steps_values
    losses = {
        'bc_loss': bc_loss,
        'steps_loss': steps_loss,
        'bc_accuracy': (correct * mask).sum() / denom,
        'steps_mae': (expected - batch.steps[st]).abs().mean(),
    }
    if grasp is not None:
        losses.update(grasp_losses(grasp, batch.grasp_target, grasp_scale_m))
    return losses
