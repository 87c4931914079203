"""Config dataclass helpers: one place where every setting gets a default and a description.

Node parameters are declared from these dataclasses (see `nodes/parameters.py`), so a setting's
type, default, description and validation live in exactly one place, as with PickNik's
generate_parameter_library.
"""

import dataclasses

from selfimprove_ros.core.topics import CAMERA_NAMES


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


def require_cameras(cameras):
    """Require a non-empty list of known camera names without repeats."""
    unknown = [cam for cam in cameras if cam not in CAMERA_NAMES]
    require(bool(cameras) and not unknown,
            f'cameras must be a non-empty subset of {list(CAMERA_NAMES)}, got {cameras!r}')
    require(len(set(cameras)) == len(cameras), f'cameras must not repeat, got {cameras!r}')


def config_from_dict(config_class, data: dict, what: str):
    """Build `config_class` from plain data, naming unknown keys instead of ignoring them."""
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - set(fields))
    require(not unknown, f'unknown {what} settings {unknown}; known: {sorted(fields)}')
    return config_class(**{key: typed(value, fields[key], what) for key, value in data.items()})


_SCALARS = {'int': int, 'float': float, 'bool': bool, 'str': str}


def typed(value, field, what: str):
    """Return `value` as the scalar type `field` declares, or raise ValueError naming both.

    YAML reads '1e-4' as a string and '3' as an int: a float setting takes either, converted;
    anything else of the wrong type is refused here, not by a TypeError deep in validation.
    """
    kind = _SCALARS.get(getattr(field.type, '__name__', field.type))
    is_bool_for_int = kind is int and isinstance(value, bool)  # bool is an int subclass
    if kind is None or (isinstance(value, kind) and not is_bool_for_int):
        return value
    if kind is float and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f'{what} setting {field.name} must be {kind.__name__}, got {value!r}')
