"""One episode written as a contract bag: the topics and stamps recorder_node records.

A station has no recorder to subscribe: it hands each tick's messages to `EpisodeRecording`
in the order the recorder would receive them in a lockstep simulation, and the bag that comes
out is read by everything downstream (labelling, datasets, `selfimprove bag`) like any other.
"""

import json

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.core import topics
from selfimprove_ros.core.topics import QOS_CLASSES
from selfimprove_ros.data.bag_messages import bool_cdr, image_cdr, joint_state_cdr, string_cdr
from selfimprove_ros.episode.events import make_event

_MS = 1_000_000


class EpisodeRecording:
    """One episode's bag; every stamp is robot time [ns]."""

    def __init__(self, bag_root: str, metadata, cameras):
        self.metadata, self.cameras = metadata, list(cameras)
        self.writer = EpisodeBagWriter(bag_root, metadata, max_chunk_s=5.0)
        # A topic is declared on its first message, as `ros2 bag record` does: a scripted
        # episode then has no empty policy/action_tokens.
        self.specs = {spec.name: spec for spec in topics.contract(self.cameras, sim=True)}

    @property
    def path(self) -> str:
        """Return the bag directory."""
        return self.writer.path

    def _write(self, name: str, data: bytes, log_ns: int):
        topic, spec = f'/{self.metadata.robot}/{name}', self.specs.pop(name, None)
        if spec is not None:
            self.writer.add_topic(topic, spec.msgtype, QOS_CLASSES.get(spec.qos))
        self.writer.write(topic, data, log_ns)

    def _event(self, stamp_ns: int, kind: str, **fields):
        text = make_event(kind, episode_id=self.metadata.episode_id, **fields)
        self._write(topics.EPISODE_EVENTS, string_cdr(text), stamp_ns)

    def start(self, stamp_ns: int):
        """Record the `start` event."""
        meta = self.metadata
        self._event(stamp_ns, 'start', robot=meta.robot, task=meta.task,
                    instruction=meta.instruction, policy_version=meta.policy_version,
                    seed=meta.seed)

    def observation(self, stamp_ns: int, frames: dict, joints, success: bool):
        """Record the tick's joint state, the camera `frames` given and the simulator's flag."""
        self._write(topics.JOINT_STATES, joint_state_cdr(stamp_ns, joints), stamp_ns)
        for cam, frame in frames.items():
            self._write(topics.camera_topic(cam), image_cdr(stamp_ns, frame, cam), stamp_ns)
        self._write(topics.SIM_SUCCESS, bool_cdr(success), stamp_ns)

    def action(self, stamp_ns: int, target, tokens: dict = None):
        """Record the command answering tick `stamp_ns` and, at a decision, its tokens document.

        `tokens` is what policy_node publishes on policy/action_tokens (PolicyController's),
        recorded under this bag's episode id.
        """
        if tokens is not None:
            text = json.dumps(dict(tokens, episode_id=self.metadata.episode_id))
            self._write(topics.POLICY_ACTIONS, string_cdr(text), stamp_ns + _MS)
        self._write(topics.JOINT_COMMANDS, joint_state_cdr(stamp_ns, target), stamp_ns + 2 * _MS)

    def finish(self, stamp_ns: int, outcome: str, cause: str) -> str:
        """Record the `end` event, close the bag; return its directory."""
        self._event(stamp_ns, 'end', outcome=outcome, cause=cause)
        return self.writer.finish(outcome, cause, end_time_ns=stamp_ns)

    def abandon(self, cause: str):
        """Close a bag whose episode could not go on (its outcome: fault, with `cause`)."""
        self.writer.abandon(cause)


class NoRecording:
    """An unrecorded episode: EpisodeRecording's interface, writing nothing."""

    def __init__(self, metadata):
        self.metadata = metadata

    def start(self, stamp_ns: int):
        """Nothing to record."""

    def observation(self, stamp_ns, frames, joints, success):
        """Nothing to record."""

    def action(self, stamp_ns, target, tokens=None):
        """Nothing to record."""

    def finish(self, stamp_ns, outcome, cause) -> str:
        """Return '' (no bag)."""
        return ''

    def abandon(self, cause: str):
        """Nothing to close."""
