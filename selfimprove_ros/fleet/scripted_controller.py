"""A scripted demonstrator in a station, where the policy controller would be.

The station drives it as it drives `PolicyController`: episode events, the tick's joint state
and (lazily rendered) frames in, one joint target per tick out. Toy tasks record their
demonstrations this way (fleet/practice_loop.py), as expert_node records ALOHA's in the graph.
"""

import numpy as np

from selfimprove_ros.runtime.model_slot import ModelSlot
from selfimprove_ros.runtime.policy_controller import TickOutput


class ScriptedModel:
    """Stands for the model of a scripted controller: its version is 'scripted'."""

    version = 'scripted'


class ScriptedController:
    """A scripted demonstrator in the policy controller's place, as expert_node takes it.

    `actor` has `reset(seed)` and `act(frames, joints, stamp_ns) -> (target [14], None)`
    (sim.point_mass.HesitantDemonstrator is one); `frames` maps each camera to a callable that
    renders it, so a demonstrator that looks pays for the frames and one that does not, not.
    """

    def __init__(self, actor):
        self.actor = actor
        self.slot = ModelSlot(live=ScriptedModel())
        self.joints, self.frames = None, {}

    def on_event(self, event: dict):
        """Reseed the demonstrator at each start."""
        if event['event'] == 'start':
            self.actor.reset(int(event.get('seed', 0)))

    def on_joints(self, stamp_ns: int, positions):
        """Keep the tick's joint state."""
        self.joints = positions

    def on_frame(self, camera: str, stamp_ns: int, frame):
        """Keep the tick's (lazy) frame."""
        self.frames[camera] = frame

    def tick(self, tick_ns: int) -> TickOutput:
        """Return the demonstrator's target for this tick."""
        target, _ = self.actor.act(self.frames, self.joints, tick_ns)
        return TickOutput({'state': 'ok', 'inference_s': 0.0}, np.asarray(target), None)
