"""RobotConfig and CameraConfig (robot/robot_config.py, camera/camera_config.py) refuse bad
values and name the setting."""

import pytest

from selfimprove_ros.camera.camera_config import CameraConfig
from selfimprove_ros.robot.robot_config import RobotConfig


@pytest.mark.parametrize('cls, kwargs, word', [
    (RobotConfig, {'backend': 'gazebo'}, 'backend'),
    (RobotConfig, {'backend': 'interbotix', 'lockstep': True}, 'lockstep'),
    (CameraConfig, {'camera_name': 'cam_top'}, 'camera_name'),
    (CameraConfig, {'source': 'realsense'}, 'serial'),
    (CameraConfig, {'width': 100}, 'width'),
])
def test_configs_reject_bad_values_by_name(cls, kwargs, word):
    with pytest.raises(ValueError, match=word):
        cls(**kwargs)
