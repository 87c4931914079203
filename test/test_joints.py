"""The 14-joint contract's ordering: order_by_name (core/joints.py)."""

import numpy as np
import pytest

from selfimprove_ros.core.joints import JOINT_NAMES, order_by_name


def test_order_by_name_reorders_and_rejects_missing():
    values = np.arange(14, dtype=float)
    names = list(reversed(JOINT_NAMES))
    np.testing.assert_array_equal(order_by_name(names, values[::-1]), values)
    np.testing.assert_array_equal(order_by_name([], values), values)
    with pytest.raises(ValueError, match='lacks joints'):
        order_by_name(names[:-1] + ['bogus'], values)
    with pytest.raises(ValueError, match='14 positions'):
        order_by_name([], values[:3])
