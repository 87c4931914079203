"""The folder layout is the architecture: ROS lives in nodes/ and graph/ only."""

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
