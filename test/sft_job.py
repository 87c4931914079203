"""Run SFT on synthetic episodes: `python sft_job.py RUN_DIR STEPS` (also under torchrun)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from episode_factory import synthetic_sft_data, tiny_sft_config  # noqa: E402
from selfimprove_ros.training.sft_trainer import SftTrainer  # noqa: E402


def main():
    """Train and print the summary as JSON on the last line."""
    run_dir, steps = sys.argv[1], int(sys.argv[2])
    trainer = SftTrainer(synthetic_sft_data(), run_dir, tiny_sft_config(steps), log=print)
    summary = trainer.run()
    if trainer.ctx.is_main:
        print(json.dumps(summary))


if __name__ == '__main__':
    main()
