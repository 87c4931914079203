"""Which arms robot_node drives: the simulator, Interbotix followers, or Trossen's bringup."""

from selfimprove_ros.nodes.bringup_arms import BringupArms
from selfimprove_ros.nodes.interbotix_arms import InterbotixBackend
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.robot.backends import SimBackend
from selfimprove_ros.robot.bringup import BringupConfig
from selfimprove_ros.sim.aloha_sim import SimConfig


def make_backend(node, config):
    """Return the backend `config.backend` names, its settings declared on `node`.

    sim: the MuJoCo ALOHA (`sim.*`, its period the robot's); bringup: beside Trossen's running
    bringup (`bringup.*`); interbotix: the followers through interbotix_xs_modules.
    """
    if config.backend == 'sim':
        sim_config = declare_config(node, SimConfig, prefix='sim.')
        if abs(sim_config.control_period_s - config.control_period_s) > 1e-9:
            sim_config = SimConfig(sim_config.task, config.control_period_s)
        return SimBackend(sim_config)
    if config.backend == 'bringup':
        bringup = declare_config(node, BringupConfig, prefix='bringup.')
        return BringupArms(node, tuple(config.arm_names), bringup)
    return InterbotixBackend(node, tuple(config.arm_names))
