"""The controller's logic without ROS: observation -> sampled chunk -> one target per tick.

The paper executes every chunk in full (5 actions at 10 Hz), so the policy is queried once per
chunk; the tokens it sampled and the version that sampled them are kept for learning. An
evaluation may execute only the first actions of each chunk and query again (a receding
horizon): the arm then corrects from newer frames at the price of more queries.
"""

from dataclasses import dataclass
import time

import numpy as np

from selfimprove_ros.camera.sources import resize
from selfimprove_ros.runtime.onnx_model import LoadedModel
from selfimprove_ros.runtime.token_sampling import sample_tokens


@dataclass
class Decision:
    """One policy query: the sampled chunk and who chose it."""

    stamp_ns: int            # stamp of the observation the decision answers
    version: str             # model version that sampled the tokens
    tokens: np.ndarray       # int64 [chunk*14]
    log_prob: float          # sum of log pi(token) under the temperature-1 policy
    targets: np.ndarray      # float32 [chunk, 14] joint targets [rad; gripper 0..1]
    inference_s: float       # ONNX Runtime time of the query [s]


def observation_inputs(model: LoadedModel, frames: dict, joints: np.ndarray,
                       instruction_ids: np.ndarray):
    """Build the (images, joints, instruction) batch of one observation for `model`."""
    cfg = model.codec.config
    images = np.stack([resize(frames[cam], cfg.image_width, cfg.image_height)
                       for cam in cfg.cameras])[None]
    return (np.ascontiguousarray(images, dtype=np.uint8),
            np.asarray(joints, dtype=np.float32).reshape(1, -1), instruction_ids[None])


class PolicyRuntime:
    """Queries the policy once per chunk and hands out one joint target per tick."""

    def __init__(self, instruction: str, temperature: float, seed: int = 0,
                 sampler: str = 'independent', actions_per_chunk: int = 0):
        if actions_per_chunk < 0:
            raise ValueError('actions_per_chunk must be >= 0 (0 = the whole chunk), got '
                             f'{actions_per_chunk!r}')
        self.instruction, self.temperature, self.sampler = instruction, temperature, sampler
        self.actions_per_chunk = actions_per_chunk
        self.rng = np.random.default_rng(seed)
        self.chunk, self.next_index = None, 0

    def reset(self):
        """Drop the chunk in progress (new episode, new model, or a hold)."""
        self.chunk, self.next_index = None, 0

    @property
    def needs_decision(self) -> bool:
        """Return whether the current chunk is used up."""
        return self.chunk is None or self.next_index >= len(self.chunk)

    def decide(self, model: LoadedModel, frames: dict, joints, stamp_ns: int) -> Decision:
        """Query `model` on one observation and start executing the sampled chunk.

        Only its first `actions_per_chunk` targets are executed when that is set; the
        decision still carries the whole chunk, as sampled.
        """
        ids = model.codec.encode_instructions([self.instruction])[0]
        inputs = observation_inputs(model, frames, joints, ids)
        started = time.perf_counter()
        logits = model.run(*inputs)[0][0]
        inference_s = time.perf_counter() - started
        tokens, logp = sample_tokens(logits, self.temperature, self.rng, self.sampler)
        targets = model.codec.decode_tokens(tokens)
        self.chunk = targets[:self.actions_per_chunk] if self.actions_per_chunk else targets
        self.next_index = 0
        return Decision(stamp_ns, model.version, tokens, float(logp.sum()), targets,
                        inference_s)

    def next_target(self) -> np.ndarray:
        """Return the next joint target of the chunk in progress."""
        if self.needs_decision:
            raise RuntimeError('no chunk in progress; call decide() first')
        target = self.chunk[self.next_index]
        self.next_index += 1
        return target
