"""The fleet's one learner: the stations' labelled bags in, a new policy version out.

It is `training.improve_run.ImproveRun` (crash-safe: state.json commits an iteration) with the
trainer's rules (`training.improve_loop`): an iteration starts once the live version's
labelled episodes hold `samples_per_iteration` on-policy decisions, the stopping rule judges
the live version first, and episodes of other versions never train it.
"""

from selfimprove_ros.training.improve_loop import learn_once, ready_decisions
from selfimprove_ros.training.improve_run import ImproveRun
from selfimprove_ros.training.stopping_rule import StoppingConfig


class Learner:
    """One self-improvement run over the bags under `bag_root`."""

    def __init__(self, run_dir: str, config, model_dir: str, bag_root: str,
                 checkpoint: str = '', stopping: StoppingConfig = None, log=print):
        self.bag_root = bag_root
        self.stopping = stopping or StoppingConfig()
        self.run = ImproveRun(run_dir, config, model_dir, checkpoint, log)
        self.stopped = False

    @property
    def version(self) -> str:
        """Return the live version: the one whose episodes train the next iteration."""
        return self.run.version

    @property
    def model_dir(self) -> str:
        """Return the live version's model directory."""
        return [entry['model_dir'] for entry in self.run.state['versions']
                if entry['version'] == self.version][-1]

    @property
    def decisions_needed(self) -> int:
        """Return the on-policy decisions an iteration needs."""
        return self.run.config.samples_per_iteration

    def pending_decisions(self) -> int:
        """Count the live version's labelled, unconsumed decisions on disk (from the labels)."""
        return sum(int(sum(1 for t, decided in enumerate(labels.decision) if decided and
                           labels.token_versions and labels.token_versions[t] == self.version))
                   for _, labels in self.run.pending([self.bag_root]))

    def learn(self) -> bool:
        """Run one iteration if enough decisions are in; return whether the live version changed.

        Sets `stopped` when the stopping rule ends the run.
        """
        ready = ready_decisions(self.run, [self.bag_root], self.run.log)
        if ready is None:
            return False
        model_dir, self.stopped = learn_once(self.run, ready, self.stopping, self.run.log)
        return bool(model_dir)

    def iterate_now(self):
        """Train one iteration on whatever the live version's labelled episodes hold.

        No threshold and no stopping rule: for loops that define an iteration by its episode
        count (fleet/practice_loop.py). Returns (new model directory, episodes, decisions).
        """
        pending = self.run.pending([self.bag_root])
        decisions = self.run.decisions(pending)
        self.run.record_outcomes(pending)  # the version's success count, as the learner keeps
        return self.run.iterate(pending, decisions), len(pending), len(decisions)
