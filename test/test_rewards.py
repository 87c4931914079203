"""Per-step rewards and discounted returns (core/rewards.py) on a hand-worked episode."""

import numpy as np
import pytest

from selfimprove_ros.core.rewards import discounted_returns, step_rewards


def test_rewards_and_returns_match_a_hand_worked_episode():
    d = np.array([10.0, 8.0, 9.0, 4.0])  # three decisions and the final observation
    rewards = step_rewards(d)
    assert rewards.tolist() == [2.0, -1.0, 5.0]
    returns = discounted_returns(rewards, gamma=0.9)
    assert returns[2] == pytest.approx(5.0)
    assert returns[1] == pytest.approx(-1.0 + 0.9 * 5.0)
    assert returns[0] == pytest.approx(2.0 + 0.9 * (-1.0) + 0.81 * 5.0)
    bonus = step_rewards(d, success_bonus=1.5, succeeded_at_end=True)
    assert bonus[-1] == pytest.approx(6.5) and bonus[0] == 2.0
    with pytest.raises(ValueError):
        step_rewards(np.array([1.0]))
    with pytest.raises(ValueError):
        discounted_returns(rewards, 1.5)
