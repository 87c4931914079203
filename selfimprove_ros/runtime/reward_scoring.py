"""The reward scorer's logic without ROS: live d(o, g), and labels for finished episodes.

`LiveScorer` keeps the newest sample of each input in an ObservationSync and scores the newest
complete observation once (its stamp is that of its oldest input); inputs that lag the newest
by more than `max_skew_s` are not mixed into one observation. `LabellingWorker` labels saved
bags on its own thread, so nothing real-time waits for labels.
"""

import queue
import threading

from selfimprove_ros.core.observation_sync import ObservationSync
from selfimprove_ros.data.episode_labelling import label_bag
from selfimprove_ros.runtime.controller import Throttle
from selfimprove_ros.runtime.policy_runtime import observation_inputs

JOINTS = 'joint_states'


class LiveScorer:
    """Score the newest complete observation with the frozen reward model, once each.

    `decode(frame)` turns a stored frame into RGB; `log` has warning/error.
    """

    def __init__(self, model, config, decode, log):
        self.model, self.config, self.decode, self.log = model, config, decode, log
        self.cameras = list(model.codec.config.cameras)
        self.sync = ObservationSync([JOINTS, *self.cameras])
        self.episode_id = ''
        self.instruction_ids = self.encode(config.instruction)
        self.scored_ns = None  # stamp of the last observation scored
        self.throttle = Throttle(5.0)

    def encode(self, instruction: str):
        """Return the model's word ids of an instruction."""
        return self.model.codec.encode_instructions([instruction])[0]

    def on_event(self, event: dict):
        """Follow the running episode (its instruction is the goal scored against)."""
        if event['event'] == 'start' and event['episode_id'] != self.episode_id:
            self.episode_id = event['episode_id']
            self.instruction_ids = self.encode(event.get('instruction') or
                                               self.config.instruction)
        elif event['event'] == 'end' and event['episode_id'] == self.episode_id:
            self.episode_id = ''

    def observation_stamp(self):
        """Return the stamp of the newest complete observation [ns] (its oldest input), or None."""
        stamps = {name: self.sync.stamp(name) for name in self.sync.sources}
        if any(stamp is None for stamp in stamps.values()):
            return None
        newest = max(stamps.values())
        lagging = [name for name, stamp in stamps.items()
                   if newest - stamp > self.config.max_skew_s * 1e9]
        if lagging:
            if self.throttle.ready('lagging'):
                self.log.warning(f'not scoring: {lagging} lag the newest input by more than '
                                 f'{self.config.max_skew_s} s')
            return None
        return min(stamps.values())

    def score_newest(self):
        """Score the newest complete observation once; return the steps-to-go message or None."""
        stamp_ns = self.observation_stamp()
        if stamp_ns is None or (self.scored_ns is not None and stamp_ns <= self.scored_ns):
            return None
        self.scored_ns = stamp_ns
        try:
            frames = {cam: self.decode(self.sync.latest(cam)) for cam in self.cameras}
            inputs = observation_inputs(self.model, frames, self.sync.latest(JOINTS),
                                        self.instruction_ids)
            steps_to_go = float(self.model.run(*inputs)[1][0])
        except Exception as error:  # noqa: B902 - a bad frame must not stop scoring (ORT too)
            if self.throttle.ready('score'):
                self.log.error(f'cannot score the observation at {stamp_ns}: {error}')
            return None
        return {'stamp_ns': stamp_ns, 'steps_to_go': steps_to_go,
                'version': self.model.version, 'episode_id': self.episode_id}


class LabellingWorker:
    """Label saved bags one by one on a thread; `finished()` hands back the results."""

    def __init__(self, model, config):
        self.model, self.config = model, config
        self.jobs, self.done = queue.Queue(), queue.Queue()
        self.thread = threading.Thread(target=self._work, name='labelling', daemon=True)
        self.thread.start()

    def submit(self, episode_id: str, bag_dir: str):
        """Queue a saved bag for labelling."""
        self.jobs.put((episode_id, bag_dir))

    def finished(self) -> list:
        """Return [(episode_id, bag_dir, labels path or None, error)] done since the last call."""
        results = []
        while True:
            try:
                results.append(self.done.get_nowait())
            except queue.Empty:
                return results

    def stop(self, timeout_s: float = 30.0):
        """Stop after the bag being labelled (if any)."""
        self.jobs.put(None)
        self.thread.join(timeout=timeout_s)

    def _work(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            episode_id, bag_dir = job
            config = self.config
            try:
                path = label_bag(bag_dir, self.model, config.control_period_s,
                                 config.success_bonus, config.batch_size, config.instruction)
            except Exception as error:  # noqa: B902 - a bad bag must not stop the worker
                self.done.put((episode_id, bag_dir, None, f'{type(error).__name__}: {error}'))
            else:
                self.done.put((episode_id, bag_dir, path, ''))
