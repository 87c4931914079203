"""The self-improvement loop around ImproveRun: wait for enough on-policy decisions, iterate.

Shared by `selfimprove train improve` and trainer_node. Episodes of older versions stay on disk
but never train the current one (on-policy, as the paper); an iteration starts once the live
version's labelled episodes hold updates x batch decisions.
"""

import time

from selfimprove_ros.training.improve_run import ImproveRun
from selfimprove_ros.training.stopping_rule import decide, StoppingConfig


def ready_decisions(run: ImproveRun, bag_roots, log=print):
    """Return (pending, decisions) once enough on-policy decisions exist, else None."""
    pending = run.pending(bag_roots)
    # Count from the labels first: decoding the bags' images only pays once there are enough.
    count = sum(sum(1 for t in range(len(labels.decision)) if labels.decision[t]
                    and labels.token_versions and labels.token_versions[t] == run.version)
                for _, labels in pending)
    if count < run.config.samples_per_iteration:
        return None
    decisions = run.decisions(pending)
    if len(decisions) < run.config.samples_per_iteration:
        return None
    return pending, decisions


def improve_forever(bag_roots, run_dir, config, model_dir='', checkpoint='', iterations=0,
                    poll_s=5.0, log=print, should_stop=lambda: False, stopping=None):
    """Yield the model directory of each new (or rolled-back-to) live policy (`learn_once`).

    Stops after `iterations` (0 = never), or when the stopping rule says so.
    """
    stopping = stopping or StoppingConfig()
    run = ImproveRun(run_dir, config, model_dir, checkpoint, log)
    done, waiting_since = 0, time.monotonic()
    while not should_stop() and (iterations == 0 or done < iterations):
        ready = ready_decisions(run, bag_roots, log)
        if ready is None:
            if time.monotonic() - waiting_since > 60:
                log(f'waiting for {config.samples_per_iteration} labelled decisions of '
                    f'{run.version} in {bag_roots}')
                waiting_since = time.monotonic()
            time.sleep(poll_s)
            continue
        model_dir, stop = learn_once(run, ready, stopping, log)
        if model_dir:
            yield model_dir
        if stop:
            return
        done += 1


def learn_once(run: ImproveRun, ready, stopping: StoppingConfig, log=print):
    """Judge the live version, then train on its practice, roll back or stop.

    `ready` is ready_decisions' (pending, decisions). Before training on a version's practice,
    the stopping rule judges that version against the best so far: significantly worse -> roll
    back to the best (its episodes still count in the history, but train nothing); worse
    `patience` times in a row -> stop with the best live. Returns (the model directory now
    live, or '' when it did not change; whether to stop).
    """
    pending, decisions = ready
    run.record_outcomes(pending)
    verdict = decide(run.history, run.version, stopping)
    episodes = [labels.episode_id for _, labels in pending]
    if verdict.action == 'continue':
        return run.iterate(pending, decisions), False
    if verdict.action == 'rollback':
        return run.revert_to(verdict.best_version, verdict.reason, episodes), False
    log(f'stopping: {verdict.reason}')
    if verdict.best_version and verdict.best_version != run.version:
        return run.revert_to(verdict.best_version, verdict.reason, episodes), True
    run.commit(episodes)
    return '', True
