"""The folder layout is the architecture: ROS lives in nodes/ and graph/ only."""

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
