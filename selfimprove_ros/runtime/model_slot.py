"""Which policy is live, which waits to be swapped in, and which a rollback returns to.

Loading and checking happen off the control loop (see onnx_model.load_model); the swap itself is
two reference assignments between ticks, so a swap costs no tick. A model that arrives during an
episode waits for its end unless the operator asked for an immediate swap.
"""

from dataclasses import dataclass, field


@dataclass
class ModelSlot:
    """Live, pending and previous models of one controller."""

    live: object = None
    pending: object = None
    history: list = field(default_factory=list)  # earlier live models, newest last

    def offer(self, model, in_episode: bool, swap_during_episode: bool) -> bool:
        """Take a verified model; swap now when allowed, else hold it; return whether swapped."""
        if self.live is not None and model.version == self.live.version:
            return False
        if self.live is None or not in_episode or swap_during_episode:
            self._swap(model)
            return True
        self.pending = model
        return False

    def between_episodes(self) -> bool:
        """Swap in a pending model (call when an episode has ended); return whether swapped."""
        if self.pending is None:
            return False
        model, self.pending = self.pending, None
        self._swap(model)
        return True

    def rollback(self):
        """Return to the previous live model; raise ValueError when there is none."""
        if not self.history:
            raise ValueError('no previous model to roll back to')
        self.pending = None
        self.live = self.history.pop()
        return self.live

    def _swap(self, model):
        if self.live is not None:
            self.history.append(self.live)
            del self.history[:-4]  # a few versions back is enough; each holds a session
        self.live = model
