"""Settings of success_detector_node."""

from dataclasses import dataclass

from selfimprove_ros.core.config import setting


@dataclass
class SuccessDetectorConfig:
    """Where success_detector_node's rule comes from, and what ends an episode.

    The threshold and debouncing of the learned rule are `core.success_detection.SuccessConfig`.
    """

    reward_model_dir: str = setting(
        '', "The frozen Stage-1 model whose d(o, g) the detector reads (the launcher copies "
        "reward_scorer_node's). When its manifest records an audited rule (`selfimprove "
        "models`), that rule replaces threshold_steps, consecutive, failure_steps and "
        "recovery_ticks; empty = use those parameters")
    learned_detection: bool = setting(
        True, 'End episodes at a learned detection; false = never (episodes run to their '
        'limit, e.g. to audit candidate rules on whole episodes)')
    use_sim_success: bool = setting(
        False, 'Also end episodes when the simulator reports success (source "sim"); by '
        'default its flag is only recorded beside the learned detection, for evaluation')
