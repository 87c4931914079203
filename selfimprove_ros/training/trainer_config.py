"""Settings of trainer_node: which stage, which bags, where runs and models go.

Stage 2's own settings are ReinforceConfig's, declared by the node as `reinforce.<name>`
parameters (reinforce.lr, reinforce.baseline, ...), so each has one home.
"""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, setting
from selfimprove_ros.core.topics import MODEL_ANNOUNCE

MODES = ('sft', 'improve')


@dataclass
class TrainerConfig:
    """One trainer process (on a robot or a GPU server)."""

    mode: str = setting('improve', f'Stage to run, one of {list(MODES)}')
    bag_dirs: list = setting(['runs/bags'], 'Episode-bag directories (local or shared)')
    run_dir: str = setting('runs/improve', 'Run directory (checkpoints, state, exported models)')
    model_dir: str = setting('', 'improve: Stage-1 model directory the robots start with')
    settings_file: str = setting('', "sft: YAML with 'sft' and 'dataset' sections")
    export_dir: str = setting('', 'sft: model directory to export to when training ends')
    iterations: int = setting(0, 'improve: iterations before the node stops (0 = forever)')
    poll_s: float = setting(5.0, 'improve: seconds between scans for new episodes')
    announce_topic: str = setting(MODEL_ANNOUNCE, 'Latched topic announcing new policies')
    model_key_file: str = setting(
        '', 'Station key file: every exported model is signed with it (manifest.sig) before it '
        "is announced, for robots whose policy_node.model_key_file is the same key; empty = "
        'unsigned')

    def __post_init__(self):
        require(self.mode in MODES, f'mode must be one of {list(MODES)}, got {self.mode!r}')
        require(bool(self.bag_dirs), 'bag_dirs must name at least one directory')
        require(self.iterations >= 0, f'iterations must be >= 0, got {self.iterations!r}')
        require(self.poll_s > 0, f'poll_s must be > 0 s, got {self.poll_s!r}')
