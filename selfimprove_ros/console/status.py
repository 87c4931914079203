"""The episode manager's status contract, as the console reads it, and its validation.

Each robot's episode manager publishes `<ns>/episode/status` (std_msgs/String, latched, depth 1)
on every change and at 1 Hz, and serves three std_srvs/Trigger services beside it.
"""

import json
import math
from dataclasses import dataclass
from typing import Optional

from selfimprove_ros.episode.state import Phase
from selfimprove_ros.core.topics import (EPISODE_ABORT, EPISODE_MARK_FAILED, EPISODE_RESET_DONE,
                                         EPISODE_START, EPISODE_STATUS)
from selfimprove_ros.training.version_history import wilson_interval  # noqa: F401, re-exported

SERVICES = (EPISODE_RESET_DONE, EPISODE_ABORT, EPISODE_START, EPISODE_MARK_FAILED)

PHASES = tuple(phase.value for phase in Phase)
STATUS_SUFFIX = '/' + EPISODE_STATUS


class StatusError(ValueError):
    """A status message that breaks the contract; the message says which field and why."""


@dataclass(frozen=True)
class RobotStatus:
    """One validated status message of one robot's episode manager."""

    robot: str
    phase: str
    cause: str
    episode_id: str
    ticks: int
    max_ticks: int
    steps_to_go: Optional[float]  # latest learned d(o, g) [control ticks]; None before any
    policy_version: str
    episodes: int                 # ended episodes since the manager started
    by_version: dict              # version -> {'episodes': int, 'successes': int}
    needs_operator: bool          # a human must reset the scene
    stamp_ns: int


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(data: dict, key: str, kind: str):
    if key not in data:
        raise StatusError(f'missing field {key!r}')
    value = data[key]
    ok = {'str': isinstance(value, str),
          'int': _is_int(value) and value >= 0,
          'bool': isinstance(value, bool),
          'number?': value is None or (isinstance(value, (int, float))
                                       and not isinstance(value, bool))}[kind]
    if not ok:
        wanted = {'str': 'a string', 'int': 'an integer >= 0', 'bool': 'true or false',
                  'number?': 'a number or null'}[kind]
        raise StatusError(f'field {key!r} must be {wanted}, got {value!r}')
    return value


def _by_version(value) -> dict:
    if not isinstance(value, dict):
        raise StatusError(f"field 'by_version' must be an object, got {value!r}")
    counts = {}
    for version, entry in value.items():
        if not isinstance(entry, dict):
            raise StatusError(f'by_version[{version!r}] must be an object, got {entry!r}')
        episodes = _check(entry, 'episodes', 'int')
        successes = _check(entry, 'successes', 'int')
        if successes > episodes:
            raise StatusError(f'by_version[{version!r}] has {successes} successes in '
                              f'{episodes} episodes')
        counts[str(version)] = {'episodes': episodes, 'successes': successes}
    return counts


def parse_status(data) -> RobotStatus:
    """Validate a status (JSON text or dict) against the contract; StatusError if it breaks it."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as error:
            raise StatusError(f'not JSON: {error}') from None
    if not isinstance(data, dict):
        raise StatusError(f'status must be a JSON object, got {type(data).__name__}')
    phase = _check(data, 'phase', 'str')
    if phase not in PHASES:
        raise StatusError(f'unknown phase {phase!r}; expected one of {", ".join(PHASES)}')
    steps = _check(data, 'steps_to_go', 'number?')
    if steps is not None and not math.isfinite(steps):
        steps = None
    return RobotStatus(
        robot=_check(data, 'robot', 'str'), phase=phase, cause=_check(data, 'cause', 'str'),
        episode_id=_check(data, 'episode_id', 'str'), ticks=_check(data, 'ticks', 'int'),
        max_ticks=_check(data, 'max_ticks', 'int'),
        steps_to_go=None if steps is None else float(steps),
        policy_version=_check(data, 'policy_version', 'str'),
        episodes=_check(data, 'episodes', 'int'), by_version=_by_version(data.get('by_version')),
        needs_operator=_check(data, 'needs_operator', 'bool'),
        stamp_ns=_check(data, 'stamp_ns', 'int'))


def status_namespace(topic: str):
    """Return the robot namespace of a status topic ('/aloha1/episode/status' -> '/aloha1')."""
    if not topic.endswith(STATUS_SUFFIX):
        return None
    return topic[:-len(STATUS_SUFFIX)] or '/'


def robot_name(namespace: str) -> str:
    """Return the console's name of a robot: its namespace without the leading slash."""
    return namespace.strip('/') or '/'


def robot_namespace(robot: str) -> str:
    """Return the namespace of a robot name ('aloha1' or '/aloha1' -> '/aloha1')."""
    return '/' + robot.strip('/')


def service_name(robot: str, service: str) -> str:
    """Return the full name of one of a robot's services ('/aloha1/episode/abort')."""
    return robot_namespace(robot).rstrip('/') + '/' + service
