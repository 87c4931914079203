"""Does a Stage-1 policy see the object? A check to pass before any evaluation in sim.

Validation token accuracy cannot tell a policy that reads the object's position from one that
replays a fixed path: both fit the joint-driven labels alike. What separates them is whether
the camera features locate the object. On each held-out episode's first frame, before the arm
has moved, the model's grasp head predicts where each gripper will grasp; the error is set
against a blind guess (the training episodes' mean grasp point) and against the precision the
task needs.
"""

import warnings

import numpy as np
import torch

# Largest mean error [cm per axis] at which the policy is taken to see the object: the scripted
# transfer_cube expert still succeeds 30/30 with 1.5 cm of error in the cube's position.
DEFAULT_MAX_ERROR_CM = 1.5


def first_frames(episodes, cameras):
    """Return (images uint8 [E, N_cam, H, W, 3], grasp targets [E, 4] m) of tick 0 of each.

    Only successful episodes count: a failed one's gripper may have closed beside the object.
    """
    episodes = [ep for ep in episodes if ep.cloned]
    if not episodes:
        return None, np.full((0, 4), np.nan, np.float32)
    images = np.stack([np.stack([ep.images[cam][0] for cam in cameras]) for ep in episodes])
    targets = np.stack([np.full(4, np.nan, np.float32) if ep.grasp_target is None
                        else np.asarray(ep.grasp_target, np.float32) for ep in episodes])
    return images, targets


def mean_error_cm(predicted_m, targets_m) -> float:
    """Return the mean absolute error [cm] over the known (finite) target values."""
    known = np.isfinite(targets_m)
    if not known.any():
        return float('nan')
    return float(np.abs(predicted_m - targets_m)[known].mean() * 100.0)


@torch.no_grad()
def localisation_check(model, episodes, train_episodes, cameras, scale_m: float,
                       max_error_cm: float = DEFAULT_MAX_ERROR_CM) -> dict:
    """Return the grasp-point error of `model` on `episodes`' first frames, beside a blind guess.

    `sees_object` is true when the error is within `max_error_cm` and under half the blind
    guess's; `known` false when no episode has a grasp target (nothing to check).
    """
    images, targets = first_frames(episodes, cameras)
    _, train_targets = first_frames(train_episodes, cameras)
    if images is None or not len(train_targets):
        return {'episodes': 0, 'error_cm': float('nan'), 'blind_error_cm': float('nan'),
                'max_error_cm': max_error_cm, 'known': False, 'sees_object': False}
    model.eval()
    predicted = model.locate_grasps(torch.from_numpy(images)).float().numpy() * scale_m
    with warnings.catch_warnings():  # an arm that never grasps: its mean is NaN, say nothing
        warnings.simplefilter('ignore', RuntimeWarning)
        blind = np.broadcast_to(np.nanmean(train_targets, axis=0), targets.shape)
    error, blind_error = mean_error_cm(predicted, targets), mean_error_cm(blind, targets)
    known = bool(np.isfinite(error))
    return {'episodes': len(targets), 'error_cm': error, 'blind_error_cm': blind_error,
            'max_error_cm': max_error_cm, 'known': known,
            'sees_object': known and error <= max_error_cm and error < 0.5 * blind_error}


def describe(report: dict, held_out: bool) -> str:
    """Return one line for the log: the numbers and what they mean for the next step."""
    where = 'held-out' if held_out else 'TRAINING (none held out)'
    if not report['known']:
        return (f'localisation check: no grasp targets in the {report["episodes"]} {where} '
                'episodes (no gripper closed); cannot tell whether the policy sees the object')
    numbers = (f'localisation on {report["episodes"]} {where} first frames: '
               f'{report["error_cm"]:.2f} cm per axis (blind guess {report["blind_error_cm"]:.2f}'
               f' cm, needed <= {report["max_error_cm"]:g} cm)')
    if report['sees_object']:
        return numbers + ': the policy locates the object'
    return (numbers + ': the policy does NOT locate the object; a sim evaluation would measure '
            'a fixed path. Train longer or with grasp_target_weight > 0 before evaluating')
