"""Settings of success_detector_node."""

from dataclasses import dataclass

from selfimprove_ros.core.config import setting


@dataclass
class SuccessDetectorConfig:
    """How success_detector_node treats the simulator's own success flag.

    The threshold and debouncing of the learned rule are `core.success_detection.SuccessConfig`.
    """

    use_sim_success: bool = setting(
        False, 'Also end episodes when the simulator reports success (source "sim"); by '
        'default its flag is only recorded beside the learned detection, for evaluation')
