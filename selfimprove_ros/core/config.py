"""Config dataclass helpers: one place where every setting gets a default and a description.

Node parameters are declared from these dataclasses (see `nodes/parameters.py`), so a setting's
type, default, description and validation live in exactly one place, as with PickNik's
generate_parameter_library.
"""

import dataclasses


def setting(default, help: str):
    """Make a dataclass field with a default and its ROS parameter's description."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: list(value) if isinstance(value, list)
                                 else dict(value), metadata={'help': help})
    return dataclasses.field(default=default, metadata={'help': help})


def describe(config_class):
    """Yield (name, default, help) for each field of a config dataclass."""
    for field in dataclasses.fields(config_class):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            raise TypeError(f'{config_class.__name__}.{field.name} needs a default')
        yield field.name, default, field.metadata.get('help', '')


def require(condition: bool, message: str):
    """Raise ValueError(message) unless condition holds; keeps __post_init__ checks one-liners."""
    if not condition:
        raise ValueError(message)
