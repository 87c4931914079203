"""A person's verdict on a recorded episode: whether it really succeeded.

In sim the simulator's `sim/success` stream says whether an episode reached its goal. On a
robot nothing does, and the learned detector that ended the episode may have been wrong. An
operator who watched it (or its video) records the truth in the bag's episode.yaml, under
`extra.verdict`; datasets then treat the episode like one the simulator judged: a failed one is
never cloned and, with `dataset.failed_steps_to_go`, teaches the reward model what failure
looks like; `selfimprove audit` compares the detector with it.
"""

import time
from typing import Optional

from selfimprove_ros.bag.episode_metadata import (format_utc, read_episode_file,
                                                  write_episode_file)

VERDICT_KEY = 'verdict'


def record_verdict(bag_dir: str, success: bool, note: str = '', by: str = 'operator',
                   now_ns: Optional[int] = None):
    """Write the verdict into `<bag_dir>/episode.yaml`; return the updated EpisodeMetadata.

    A later verdict replaces an earlier one. Refuses a bag without episode.yaml and one still
    marked running, whose recording may not be complete.
    """
    record = read_episode_file(bag_dir)
    if record is None:
        raise ValueError(f'{bag_dir} has no episode.yaml; is it an episode bag (selfimprove bag '
                         'info shows what it holds)?')
    if not record.is_final:
        raise ValueError(f'{bag_dir} is still marked running: its recorder is recording or died; '
                         'wait for the episode to end, or run `selfimprove bag recover` first')
    extra = dict(record.extra)
    extra[VERDICT_KEY] = {'success': bool(success), 'by': str(by), 'note': str(note),
                          'time_utc': format_utc(time.time_ns() if now_ns is None else now_ns)}
    updated = record.replace(extra=extra)
    write_episode_file(bag_dir, updated)
    return updated


def recorded_verdict(extra) -> Optional[bool]:
    """Return the success a person recorded in an episode's `extra`, or None if none did."""
    verdict = (extra or {}).get(VERDICT_KEY)
    if isinstance(verdict, dict) and isinstance(verdict.get('success'), bool):
        return verdict['success']
    return None
