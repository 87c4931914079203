"""Settings of Stage 2 (REINFORCE self-improvement); defaults are the paper's where it has one."""

from dataclasses import asdict, dataclass

from selfimprove_ros.core.config import config_from_dict, require, setting
from selfimprove_ros.runtime.token_sampling import SAMPLERS

BASELINES = ('none', 'mean', 'step')
OBJECTIVES = ('reinforce', 'filtered_bc')
RETURN_HORIZONS = ('end', 'closest_approach')
TRAINABLE = ('policy', 'action_head')


@dataclass
class ReinforceConfig:
    """Returns, loss scale, on-policy batching and optimisation of self-improvement."""

    objective: str = setting(
        'reinforce', "How an iteration learns from its practice: 'reinforce' (the paper: "
        "-c * R_t * log pi of every sampled chunk) or 'filtered_bc' (success-filtered "
        "behaviour cloning: the chunks of the episodes the detector called successes are fitted "
        "with Stage 1's soft targets, `updates_per_iteration` steps of `batch_size`, lr decaying "
        'to 0 by cosine; the reference issue 21 asks every practice setting to beat, and the '
        'one that paid: the shipped policy 78 -> 92/100 greedy on 2,500 episodes at '
        'temperature 1, docs/results.md)')
    gamma: float = setting(0.9, 'Discount per decision (one sampled chunk) (the paper: 0.9)')
    sampler: str = setting(
        'independent', "How practice drew its chunks (policy_node's sampler): log pi(a_t | o_t, "
        "g) is the exact probability of what that sampler drew, 'chunk_quantile' included")
    temperature: float = setting(
        1.0, "The temperature practice sampled at (policy_node's): the policy trained is the "
        'tempered one that acted')
    loss_scale: float = setting(
        0.05, 'c in loss = -c * R_t * log pi(a_t | o_t, g) (the paper: 0.05, ~ 1 - gamma^N '
        'keeps c * R within about [-1, 1])')
    baseline: str = setting(
        'none', "What is subtracted from R_t: 'none' (the paper), 'mean' (the mean return of "
        "the iteration's decisions) or 'step' (the mean return of the iteration's decisions at "
        "the same step of their episodes; see policy_gradient.baseline). With 'none' and "
        "returns mostly of one sign, every sampled chunk is pushed the same way; a weak "
        "policy's failures then push its mode down")
    returns_until: str = setting(
        'end', "Where an episode's returns stop: 'end' (the paper) or 'closest_approach' (the "
        'last tick within 1 tick of its smallest d; later ticks give no reward and their '
        'decisions are not trained). Rewards are labelled after the episode, so the cut is '
        "known then. It keeps what happens after the best state (an undetected success "
        "wandering off, a failure's jump to 'not within the horizon') from being charged to "
        'the actions that led there')
    trainable: str = setting(
        'policy', "What Stage 2 trains: 'policy' (all but the vision encoder, the paper) or "
        "'action_head'. AdamW moves every trained parameter by about lr per update whatever "
        'the gradient, so with few episodes per iteration, where most of the gradient is noise, '
        'fewer moving parameters take a smaller random step (docs/notebook/2026-11-30.md)')
    updates_per_iteration: int = setting(16, 'Gradient updates per iteration (the paper: 16)')
    batch_size: int = setting(64, 'Decisions per update (the paper: 64); an iteration waits '
                              'for updates x batch on-policy decisions, then clears its buffer')
    decisions_per_iteration: int = setting(
        0, 'On-policy decisions an iteration waits for; 0 = updates x batch (the paper: each '
        "decision trains once). 'filtered_bc' fits only the successes' share of them, several "
        'times over, so it sets its own')
    soft_target_sigma_bins: float = setting(
        2.0, "'filtered_bc' only: width [bins] of the Gaussian target around each sampled token "
        '(Stage 1 trains with 2; one-hot targets sharpen the policy onto single samples)')
    lr: float = setting(1e-4, 'AdamW learning rate of the policy copy')
    target_kl: float = setting(
        0.0, "Trust region: stop an iteration's updates once the policy has moved more than this "
        'from the one that practised, as the mean KL(old || new) per decision [nats, summed '
        "over a chunk's tokens] on the next minibatch (PPO's early stop); 0 disables. The KL "
        'is measured and logged either way')
    off_policy_nats: float = setting(
        25.0, "An episode whose chunks are on average this much less likely [nats per chunk] "
        "under the live version than that version's own samples (-log pi(a|o) - H(pi(.|o))) "
        'was not sampled by these weights, whatever its version name says, and is left out. '
        'Temperature-1 practice of the right weights measures 0 +- 5 per episode; rollouts of '
        'an earlier model shipped under the same name 190-370 (2026-11-30). Practice hotter '
        'than temperature 1 raises it too')
    weight_decay: float = setting(0.0, 'AdamW weight decay')
    grad_clip: float = setting(1.0, 'Global gradient-norm clip; 0 disables')
    success_bonus: float = setting(
        0.0, 'Extra reward [ticks] on the last step when the simulator reports success (the '
        'paper adds a small constant for an insertion the cameras cannot see); applied at '
        'labelling time, recorded here for provenance')
    shuffle_returns: bool = setting(
        False, "The null control of a practice setting: each iteration's returns are permuted "
        'across its decisions before training, so no update knows which chunk did well; a '
        "setting that beats its own shuffled control carries signal. With 'filtered_bc' the "
        "episodes' verdicts are permuted instead: as many episodes, chosen blind")
    seed: int = setting(0, 'Seed of minibatch sampling (and of the null control\'s shuffle)')
    device: str = setting('auto', "'auto' (cuda if present), 'cpu' or 'cuda[:N]'")
    torch_threads: int = setting(0, 'torch intra-op threads on CPU; 0 = torch default')

    def __post_init__(self):
        require(self.objective in OBJECTIVES,
                f'objective must be one of {list(OBJECTIVES)}, got {self.objective!r}')
        require(self.decisions_per_iteration >= 0, f'decisions_per_iteration must be >= 0 (0 = '
                f'updates x batch), got {self.decisions_per_iteration!r}')
        require(self.soft_target_sigma_bins >= 0, f'soft_target_sigma_bins must be >= 0 bins, '
                f'got {self.soft_target_sigma_bins!r}')
        require(0.0 <= self.gamma <= 1.0, f'gamma must be in [0, 1], got {self.gamma!r}')
        require(self.sampler in SAMPLERS,
                f'sampler must be one of {list(SAMPLERS)}, got {self.sampler!r}')
        require(self.temperature > 0, f'temperature must be > 0 (greedy practice samples '
                f'nothing to learn from), got {self.temperature!r}')
        require(self.loss_scale > 0, f'loss_scale must be > 0, got {self.loss_scale!r}')
        require(self.baseline in BASELINES,
                f'baseline must be one of {list(BASELINES)}, got {self.baseline!r}')
        require(self.returns_until in RETURN_HORIZONS,
                f'returns_until must be one of {list(RETURN_HORIZONS)}, got '
                f'{self.returns_until!r}')
        require(self.trainable in TRAINABLE,
                f'trainable must be one of {list(TRAINABLE)}, got {self.trainable!r}')
        for name in ('updates_per_iteration', 'batch_size'):
            require(getattr(self, name) >= 1, f'{name} must be >= 1, got {getattr(self, name)!r}')
        require(self.lr > 0, f'lr must be > 0, got {self.lr!r}')
        require(self.grad_clip >= 0, f'grad_clip must be >= 0, got {self.grad_clip!r}')
        require(self.off_policy_nats > 0,
                f'off_policy_nats must be > 0 nats per chunk, got {self.off_policy_nats!r}')
        require(self.target_kl >= 0,
                f'target_kl must be >= 0 nats (0 disables), got {self.target_kl!r}')

    @property
    def samples_per_iteration(self) -> int:
        """Return the on-policy decisions one iteration consumes (N x B unless set)."""
        return self.decisions_per_iteration or self.updates_per_iteration * self.batch_size

    def to_dict(self) -> dict:
        """Return plain data for checkpoints and manifests."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """Build from plain data, naming unknown keys instead of ignoring them."""
        return config_from_dict(cls, data, 'REINFORCE')
