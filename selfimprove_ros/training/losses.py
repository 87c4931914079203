"""The two Stage-1 objectives and their validation metrics, on one forward pass."""

import torch
import torch.nn.functional as F


def sft_losses(action_logits, steps_logits, batch, steps_values: torch.Tensor) -> dict:
    """Return BC and steps-to-go cross-entropies plus accuracy and MAE [ticks].

    Rows [0, bc_rows) of the batch train behaviour cloning, the rest train steps-to-go, so each
    objective gets half of every batch (the paper's even split). Action tokens past an episode's
    end are masked out: what the robot would have done after the episode is unknown.
    """
    bc = slice(0, batch.bc_rows)
    st = slice(batch.bc_rows, None)
    logits = action_logits[bc].float()
    targets = batch.action_tokens[bc]
    mask = batch.action_mask[bc].float()
    token_loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='none')
    denom = mask.sum().clamp_min(1.0)
    bc_loss = (token_loss * mask.flatten()).sum() / denom
    correct = (logits.argmax(-1) == targets).float()
    steps_logits = steps_logits[st].float()
    steps_loss = F.cross_entropy(steps_logits, batch.steps_bins[st])
    expected = steps_logits.softmax(-1) @ steps_values
    return {
        'bc_loss': bc_loss,
        'steps_loss': steps_loss,
        'bc_accuracy': (correct * mask).sum() / denom,
        'steps_mae': (expected - batch.steps[st]).abs().mean(),
    }
