"""ModelSlot (runtime/model_slot.py): a new model waits for the episode's end; rollback."""

import pytest


class _Model:
    def __init__(self, version):
        self.version = version


def test_model_slot_waits_for_the_episode_end_and_rolls_back():
    from selfimprove_ros.runtime.model_slot import ModelSlot
    slot = ModelSlot()
    assert slot.offer(_Model('v1'), in_episode=True, swap_during_episode=False)  # first: now
    assert not slot.offer(_Model('v2'), in_episode=True, swap_during_episode=False)
    assert slot.live.version == 'v1' and slot.pending.version == 'v2'
    assert slot.between_episodes() and slot.live.version == 'v2'
    assert not slot.between_episodes()
    assert slot.offer(_Model('v3'), in_episode=True, swap_during_episode=True)
    assert not slot.offer(_Model('v3'), in_episode=False, swap_during_episode=False)  # same one
    assert slot.rollback().version == 'v2' and slot.rollback().version == 'v1'
    with pytest.raises(ValueError, match='no previous'):
        slot.rollback()
