"""Declare a node's ROS parameters from a config dataclass and read them back validated."""

import dataclasses

from rcl_interfaces.msg import ParameterDescriptor

from selfimprove_ros.core.config import describe


def declare_config(node, config_class, prefix: str = ''):
    """Declare one parameter per field of `config_class` and return the validated config.

    A bad value stops the node at start-up with the dataclass's own message, which names the
    parameter and the value, instead of failing later inside a callback.
    """
    values = {}
    for name, default, help_text in describe(config_class):
        parameter = f'{prefix}{name}'
        node.declare_parameter(parameter, default,
                               ParameterDescriptor(description=help_text))
        value = node.get_parameter(parameter).value
        values[name] = list(value) if isinstance(value, (list, tuple)) else value
    try:
        return config_class(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f'{node.get_fully_qualified_name()}: bad parameter: {error}') from error


def config_as_dict(config) -> dict:
    """Return a config dataclass as a plain dict (to log what a node runs with)."""
    return dataclasses.asdict(config)
