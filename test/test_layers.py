"""The folder layout is the architecture: ROS only in nodes/ and graph/, every arrow down."""

import ast
import importlib
import os
import re

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'selfimprove_ros')
ROS_SHELL = ('nodes', 'graph')
ROS_IMPORT = re.compile(r'^\s*(?:import|from)\s+(rclpy|\w+_msgs|std_srvs|\w+_interfaces)\b',
                        re.MULTILINE)


def ros_imports_outside_the_shell(root=PACKAGE) -> list:
    """Return 'path: module' for every ROS import outside nodes/ and graph/."""
    found = []
    for folder, _, files in os.walk(root):
        relative = os.path.relpath(folder, root)
        if relative.split(os.sep)[0] in ROS_SHELL:
            continue
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            with open(os.path.join(folder, name)) as stream:
                for match in ROS_IMPORT.finditer(stream.read()):
                    found.append(f'{os.path.join(relative, name)}: {match.group(1)}')
    return found


def test_no_ros_import_outside_nodes_and_graph():
    assert ros_imports_outside_the_shell() == []


def test_the_guard_sees_an_import_inside_a_function(tmp_path):
    (tmp_path / 'core').mkdir()
    (tmp_path / 'core' / 'sneaky.py').write_text('def f():\n    from rclpy.node import Node\n')
    (tmp_path / 'nodes').mkdir()
    (tmp_path / 'nodes' / 'fine.py').write_text('import rclpy\n')
    assert ros_imports_outside_the_shell(str(tmp_path)) == ['core/sneaky.py: rclpy']


def unresolved_imports(root=PACKAGE) -> list:
    """Return 'path:line: module has no name' for every project import that would fail.

    Many imports sit inside functions (optional or heavy dependencies load late), so a module
    that moved breaks them only when that command runs: `selfimprove models` did.
    """
    found = []
    for folder, _, files in os.walk(root):
        for name in sorted(f for f in files if f.endswith('.py')):
            path = os.path.join(folder, name)
            with open(path) as stream:
                tree = ast.parse(stream.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and \
                        (node.module or '').startswith('selfimprove_ros'):
                    found += _missing_names(node, os.path.relpath(path, root))
    return found


def _missing_names(node, path) -> list:
    try:
        module = importlib.import_module(node.module)
    except ImportError as error:
        return [f'{path}:{node.lineno}: {error}']
    missing = []
    for alias in node.names:
        if hasattr(module, alias.name):
            continue
        try:
            importlib.import_module(f'{node.module}.{alias.name}')
        except ImportError:
            missing.append(f'{path}:{node.lineno}: {node.module} has no {alias.name}')
    return missing


def test_every_project_import_resolves_even_inside_functions():
    assert unresolved_imports() == []


def test_the_import_check_sees_a_stale_import_inside_a_function(tmp_path):
    (tmp_path / 'stale.py').write_text(
        'def f():\n    from selfimprove_ros.core.config import no_such_name\n')
    assert unresolved_imports(str(tmp_path)) == [
        'stale.py:2: selfimprove_ros.core.config has no no_such_name']


def subpackages_imported(folder: str, root=PACKAGE) -> dict:
    """Return {subpackage of selfimprove_ros: [importing files]} for the modules of `folder`."""
    found = {}
    for name in sorted(os.listdir(os.path.join(root, folder))):
        if not name.endswith('.py'):
            continue
        with open(os.path.join(root, folder, name)) as stream:
            tree = ast.parse(stream.read())
        for node in ast.walk(tree):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) \
                else [node.module or ''] if isinstance(node, ast.ImportFrom) else []
            for module in modules:
                parts = module.split('.')
                if parts[0] == 'selfimprove_ros' and len(parts) > 1:
                    found.setdefault(parts[1], []).append(f'{folder}/{name}')
    return found


def test_the_fleet_uses_the_floors_below_it_never_the_graph_or_the_command_line():
    # Stations are the robot's cores without ROS: arrows from fleet/ point down.
    above = {'graph', 'nodes', 'cli', 'console'}
    imported = subpackages_imported('fleet')
    assert not above & set(imported), {key: imported[key] for key in above & set(imported)}
    assert {'runtime', 'robot', 'sim', 'bag', 'training'} <= set(imported)


def test_the_import_guard_sees_an_arrow_up(tmp_path):
    (tmp_path / 'fleet').mkdir()
    (tmp_path / 'fleet' / 'up.py').write_text('from selfimprove_ros.graph import launcher\n')
    assert subpackages_imported('fleet', str(tmp_path)) == {'graph': ['fleet/up.py']}


# The floors of selfimprove_ros, lowest first: a module may import its own folder and any floor
# below its own, never one beside or above it. A name may be a module (`episode.events`, the
# contract every node follows, imports nothing of ours and sits with core although its folder
# holds the manager's cycle, which records bags); the longest name that matches decides.
FLOORS = (
    ('core', 'episode.events'),
    ('sim', 'camera'),
    ('robot', 'bag'),
    ('episode', 'data'),
    ('model',),
    ('runtime',),
    ('training',),
    ('fleet', 'console'),
    ('nodes',),
    ('graph',),
    ('cli',),
)


def _floor_of(module: str, floors=FLOORS):
    """Return (floor index, name of its unit) for a dotted module under selfimprove_ros."""
    best = None
    for index, names in enumerate(floors):
        for name in names:
            if (module == name or module.startswith(name + '.')) and \
                    (best is None or len(name) > len(best[1])):
                best = (index, name)
    return best


def _project_imports(tree, module: str, is_package: bool):
    """Yield (line, imported module under selfimprove_ros) for every import of the project."""
    package = module.split('.') if is_package else module.split('.')[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            names = ['.'.join(['selfimprove_ros', *base, *filter(None, [node.module])])]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or '']
            if node.module == 'selfimprove_ros':
                names = [f'selfimprove_ros.{alias.name}' for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split('.')
            if parts[0] == 'selfimprove_ros' and len(parts) > 1:
                yield node.lineno, '.'.join(parts[1:])


def arrows_up(root=PACKAGE, floors=FLOORS) -> list:
    """Return 'path:line: why' for every import that runs beside or up a floor, or has none."""
    found = []
    for folder, _, files in os.walk(root):
        relative = os.path.relpath(folder, root)
        if relative == '.':
            continue
        for name in sorted(f for f in files if f.endswith('.py')):
            path = os.path.join(relative, name)
            module = os.path.splitext(path)[0].replace(os.sep, '.')
            is_package = name == '__init__.py'
            if is_package:
                module = module[:-len('.__init__')]
            here = _floor_of(module, floors)
            if here is None:
                found.append(f'{path}: {relative.split(os.sep)[0]} is on no floor; add its '
                             'folder to FLOORS in test/test_layers.py, above everything it '
                             'imports')
                continue
            with open(os.path.join(root, path)) as stream:
                tree = ast.parse(stream.read())
            for line, target in _project_imports(tree, module, is_package):
                there = _floor_of(target, floors)
                if there is None or there[1] == here[1] or there[0] < here[0]:
                    continue
                found.append(f'{path}:{line}: {here[1]} (floor {here[0]}) imports {target} '
                             f'(floor {there[0]}); move what it uses below floor {here[0]}, '
                             f'or this code above floor {there[0]}')
    return sorted(found)


def test_every_import_points_down_a_floor():
    assert arrows_up() == []


def test_the_floor_guard_sees_an_arrow_up_sideways_or_without_a_floor(tmp_path):
    for folder, text in {
            'core': 'import json\n',
            'data': 'from selfimprove_ros.core.rewards import step_rewards\n'
                    'def f():\n'
                    '    from selfimprove_ros.runtime.episode_labelling import label_bag\n',
            'runtime': 'from selfimprove_ros.data.episode import Episode\n'
                       'from .controller import Throttle\n',
            'sim': 'from selfimprove_ros import camera\n',
            'fleet': 'from ..graph import launcher\n',
            'newfloor': 'import os\n'}.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'a.py').write_text(text)
    assert arrows_up(str(tmp_path)) == [
        'data/a.py:3: data (floor 3) imports runtime.episode_labelling (floor 5); move what '
        'it uses below floor 3, or this code above floor 5',
        'fleet/a.py:1: fleet (floor 7) imports graph (floor 9); move what it uses below '
        'floor 7, or this code above floor 9',
        'newfloor/a.py: newfloor is on no floor; add its folder to FLOORS in '
        'test/test_layers.py, above everything it imports',
        'sim/a.py:1: sim (floor 1) imports camera (floor 1); move what it uses below floor '
        '1, or this code above floor 1']
