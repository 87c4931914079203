"""The topic contract: names (relative to the robot namespace), types and QoS classes.

The topic table in docs/architecture.md explains each entry; this module is what the nodes, the
recorder and the docs check against, so a topic cannot be renamed in one place only.
"""

from dataclasses import dataclass

CAMERA_NAMES = ('cam_high', 'cam_low', 'cam_left_wrist', 'cam_right_wrist')

# The QoS classes of the contract, as plain data: the nodes build rclpy profiles from them and
# the recorder writes them into bags (rosbag2's offered_qos_profiles).
QOS_CLASSES = {
    # Cameras: newest frame only; a late frame is worth less than a dropped one.
    'sensor': {'history': 'keep_last', 'depth': 1, 'reliability': 'best_effort',
               'durability': 'volatile'},
    # Joint states, commands, events: every message matters.
    'reliable': {'history': 'keep_last', 'depth': 10, 'reliability': 'reliable',
                 'durability': 'volatile'},
    # E-stop, status, announcements: a late joiner must see the current state.
    'latched': {'history': 'keep_last', 'depth': 1, 'reliability': 'reliable',
                'durability': 'transient_local'},
}

JOINT_STATES = 'joint_states'
JOINT_COMMANDS = 'joint_commands'
# The command a demonstrator meant, beside the one executed (a scripted expert with injected
# noise): the clean label of Stage 1. Stamped like the executed command it accompanies.
JOINT_COMMANDS_INTENDED = 'joint_commands/intended'
ESTOP = 'estop'
SAFETY_STATUS = 'safety_status'
SIM_STATE = 'sim/state'
SIM_SUCCESS = 'sim/success'
SIM_RESET = 'sim/reset'
EPISODE_EVENTS = 'episode/events'
# JSON per decision tick: {"stamp_ns", "version", "tokens": [chunk*14]} (std_msgs/String), so
# every recorded step is attributed to exactly the model that sampled it.
POLICY_ACTIONS = 'policy/action_tokens'
# JSON {"stamp_ns", "version", "tick_period_s", "observation_age_s", "inference_s",
# "latency_s", "frame_latency_s", "state"}: the controller's own timing, once per robot tick.
POLICY_TIMING = 'policy/timing'
POLICY_ROLLBACK = 'policy/rollback'      # std_srvs/Trigger: back to the previous policy
POLICY_SWAP_NOW = 'policy/swap_now'      # std_srvs/Trigger: swap a pending policy in now
# Latched JSON {"model_dir", "version"}: a new policy for every controller on the graph.
MODEL_ANNOUNCE = '/models/policy'
# JSON {"stamp_ns", "steps_to_go", "version", "episode_id"}: live d(o, g) [control ticks].
STEPS_TO_GO = 'reward/steps_to_go'
# JSON {"episode_id", "stamp_ns", "steps_to_go", "sim_success"}: the learned detector fired.
SUCCESS_DETECTED = 'success/detected'
EPISODE_STATUS = 'episode/status'        # latched JSON, see docs/architecture.md
EPISODE_RESET_DONE = 'episode/reset_done'  # std_srvs/Trigger
EPISODE_ABORT = 'episode/abort'            # std_srvs/Trigger
EPISODE_START = 'episode/start'            # std_srvs/Trigger
EPISODE_MARK_FAILED = 'episode/mark_failed'  # std_srvs/Trigger: the last saved episode failed
# Latched JSON {"mode", "state": starting/training/done/failed, "models": [versions], "version",
# "error"}: the trainer's progress, for the console and whoever waits on a training run.
TRAINER_STATUS = 'trainer/status'
DIAGNOSTICS = '/diagnostics'


def camera_topic(camera: str) -> str:
    """Image topic of an ALOHA camera, e.g. 'cameras/cam_high/image_raw'."""
    return f'cameras/{camera}/image_raw'


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    name: str
    msgtype: str  # rosbag2 form, e.g. 'sensor_msgs/msg/Image'
    qos: str      # 'sensor' (best effort, depth 1), 'reliable' or 'latched'
    recorded: bool = True


def contract(cameras=CAMERA_NAMES, sim=True):
    """Every recorded topic of one robot, in the order docs/architecture.md lists them."""
    specs = [TopicSpec(camera_topic(cam), 'sensor_msgs/msg/Image', 'sensor') for cam in cameras]
    specs += [
        TopicSpec(JOINT_STATES, 'sensor_msgs/msg/JointState', 'reliable'),
        TopicSpec(JOINT_COMMANDS, 'sensor_msgs/msg/JointState', 'reliable'),
        TopicSpec(JOINT_COMMANDS_INTENDED, 'sensor_msgs/msg/JointState', 'reliable'),
        TopicSpec(ESTOP, 'std_msgs/msg/Bool', 'latched'),
        TopicSpec(SAFETY_STATUS, 'diagnostic_msgs/msg/DiagnosticStatus', 'reliable'),
        TopicSpec(EPISODE_EVENTS, 'std_msgs/msg/String', 'reliable'),
        TopicSpec(POLICY_ACTIONS, 'std_msgs/msg/String', 'reliable'),
        TopicSpec(STEPS_TO_GO, 'std_msgs/msg/String', 'reliable'),
        TopicSpec(SUCCESS_DETECTED, 'std_msgs/msg/String', 'reliable'),
        # The manager's state, so a bag replays what the operator saw (Foxglove's panel).
        TopicSpec(EPISODE_STATUS, 'std_msgs/msg/String', 'latched'),
    ]
    if sim:
        specs += [TopicSpec(SIM_STATE, 'sensor_msgs/msg/JointState', 'reliable'),
                  TopicSpec(SIM_SUCCESS, 'std_msgs/msg/Bool', 'reliable')]
    return specs
