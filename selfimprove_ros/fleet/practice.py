"""Practice and evaluation on a fleet: episodes out to the stations, versions from the learner.

Practice alternates two phases, so that no station's episode is wasted on a version the
learner has just replaced (REINFORCE is on-policy; episodes of an older version never train):
1. the stations practise the live version until its labelled episodes hold the decisions an
   iteration needs (counted from the results, confirmed from the labels on disk);
2. the learner judges the version, trains, exports, and every station takes the new version
   before its next episode.
Everything lives under one bag root; a run that stops (Ctrl-C, a killed learner) resumes
where it was: the learner from its state.json, the episode count from the bags on disk, and an
episode that was running then is marked a fault.
"""

import os
import time

from selfimprove_ros.bag.episode_bag import is_being_written
from selfimprove_ros.bag.episode_metadata import new_episode_id, read_episode_file
from selfimprove_ros.fleet.fleet import mark_fault
from selfimprove_ros.fleet.station import PHASES


class Tally:
    """Episodes, simulator and detected successes, and station seconds per version.

    `false_detections` counts the detector's successes that the simulator denied (where its
    verdict is known): what filtered BC would fit on a robot that has no simulator.
    """

    def __init__(self):
        self.versions = {}
        self.phases = dict.fromkeys(PHASES + ('learning',), 0.0)
        self.faults = 0

    def add(self, result: dict):
        """Count one episode result."""
        if result['outcome'] == 'fault':
            self.faults += 1
        row = self.versions.setdefault(result['version'] or 'none', {
            'episodes': 0, 'sim_successes': 0, 'detected_successes': 0, 'false_detections': 0,
            'faults': 0})
        detected = result['outcome'] == 'success'
        row['episodes'] += 1
        row['sim_successes'] += bool(result['sim_success'])
        row['detected_successes'] += detected
        row['false_detections'] += detected and result['sim_success'] is False
        row['faults'] += result['outcome'] == 'fault'
        for name, seconds in result['phases'].items():
            self.phases[name] = self.phases.get(name, 0.0) + seconds

    def describe(self, version: str) -> str:
        """Return e.g. 'sim 12/40, detected 11/40 (1 false)' for `version`."""
        row = self.versions.get(version)
        if not row:
            return 'no episodes yet'
        return (f'sim {row["sim_successes"]}/{row["episodes"]}, detected '
                f'{row["detected_successes"]}/{row["episodes"]} '
                f'({row["false_detections"]} false)')


def existing_episodes(bag_root: str, reason: str) -> int:
    """Count the bags under `bag_root`; mark those left running by a stopped run as faults."""
    if not os.path.isdir(bag_root):
        return 0
    count = 0
    for name in sorted(os.listdir(bag_root)):
        path = os.path.join(bag_root, name)
        meta = read_episode_file(path) if os.path.isdir(path) else None
        if meta is None:
            continue
        count += 1
        if not meta.is_final and not is_being_written(path):
            mark_fault(bag_root, meta.episode_id, reason)
    return count


def progress_bar(total: int, initial: int, description: str, enabled: bool = True):
    """Return a tqdm bar of episodes (a silent one when not `enabled`)."""
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=description, unit='ep',
                disable=not enabled, dynamic_ncols=True, leave=True)


def practise(fleet, learner, bag_root: str, episodes: int, first_seed: int = 100_000,
             log=print, progress: bool = True) -> dict:
    """Practise until `episodes` bags exist under `bag_root` (or the stopping rule stops).

    Returns a summary: episodes, versions (with episodes and successes each), phases [s],
    faults and the elapsed time.
    """
    os.makedirs(bag_root, exist_ok=True)
    done = existing_episodes(bag_root, 'the practice run stopped during this episode')
    tally, started = Tally(), time.monotonic()
    counter = {'next': done}

    def next_job():
        if counter['next'] >= episodes:
            return None
        number = counter['next']
        counter['next'] += 1
        return {'seed': first_seed + number, 'bag_root': bag_root,
                'episode_id': f'p{number:06d}-{new_episode_id()[:8]}'}

    bar = progress_bar(episodes, done, 'practice', progress)
    # Lines logged while the bar runs go above it, not through it.
    logs = (learner.run.log, fleet.log)
    learner.run.log = fleet.log = (lambda text: bar.write(str(text))) \
        if progress and log is print else log
    live = fleet.take_model(learner.model_dir)
    try:
        while counter['next'] < episodes and not learner.stopped:
            have, need = learner.pending_decisions(), learner.decisions_needed

            def enough(results, version=live, have=have):
                return have + sum(r['decisions'] for r in results
                                  if r['version'] == version) >= need

            def on_result(result):
                tally.add(result)
                bar.update(1)
                rate = (bar.n - done) / max(time.monotonic() - started, 1e-9) * 60
                bar.set_postfix_str(f'{live}: {tally.describe(live)}, {rate:.0f} ep/min')
            fleet.run(next_job, enough, on_result)
            learning = time.monotonic()
            if learner.learn():
                live = fleet.take_model(learner.model_dir)
            tally.phases['learning'] += time.monotonic() - learning
    finally:
        bar.close()
        learner.run.log, fleet.log = logs
    return {'episodes': bar.n, 'practised_now': bar.n - done, 'live_version': learner.version,
            'stopped_by_rule': learner.stopped, 'versions': tally.versions,
            'phases_s': tally.phases, 'faults': fleet.faults,
            'elapsed_s': time.monotonic() - started}


def evaluate_on_fleet(fleet, model_dir: str, seeds, bag_root: str, log=print,
                      progress: bool = True) -> list:
    """Run one episode of `model_dir` per seed on the fleet; return the EpisodeResult dicts."""
    version = fleet.take_model(model_dir)
    seeds = list(seeds)
    jobs = iter({'seed': int(seed), 'bag_root': bag_root,
                 'episode_id': f'e{number:05d}-{int(seed)}'} for number, seed in enumerate(seeds))
    bar = progress_bar(len(seeds), 0, f'evaluating {version}', progress)
    tally = Tally()

    def on_result(result):
        tally.add(result)
        bar.update(1)
        bar.set_postfix_str(tally.describe(version))
    try:
        return fleet.run(lambda: next(jobs, None), on_result=on_result)
    finally:
        bar.close()
