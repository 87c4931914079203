"""Moved to data/episode_labelling.py (issue 23): this name only keeps two importers working.

fleet/station.py and training/improve_run.py still import from here while they are being
changed elsewhere; import `selfimprove_ros.data.episode_labelling` instead. Delete this module
once `grep -rn runtime.episode_labelling selfimprove_ros test benchmarks` finds only it.
"""

from selfimprove_ros.data.episode_labelling import (  # noqa: F401, re-exported
    BadLabels, episode_inputs, FORMAT, label_bag, label_episode, LABELS_FILE,
    labelling_dataset_config, predict_steps_to_go, read_labels, tick_rewards, TickLabels,
    write_labels)
