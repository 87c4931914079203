"""The Foxglove layout (config/foxglove_station.json) is a well-formed layout that shows what a
station needs, and every topic it names is one our recorder records: by the topic contract and in
a bag a running recorder wrote."""

import copy
import json
import os
import re

import pytest
import rclpy

from graph_probe import GraphProbe, init_ros
from selfimprove_ros.core import topics
from selfimprove_ros.core.topics import CAMERA_NAMES, camera_topic, contract
from selfimprove_ros.graph.description import build_graph, config_path, load_config
from selfimprove_ros.graph.launcher import GraphRunner
from test_trossen_preset import bag_topics, record_episode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYOUT = os.path.join(ROOT, 'config', 'foxglove_station.json')
NAMESPACE = '/aloha1'
SCRIPT_PREFIX = '/studio_script/'  # Foxglove's namespace for user-script outputs
PANEL_TYPES = {'Image', 'Plot', 'RawMessages', 'Tab'}


def load_layout(path=LAYOUT) -> dict:
    """The layout as Foxglove imports it."""
    with open(path) as stream:
        return json.load(stream)


def tree_panels(node) -> list:
    """Panel ids of a mosaic tree (a panel id, or {first, second, direction})."""
    if isinstance(node, str):
        return [node]
    return tree_panels(node['first']) + tree_panels(node['second'])


def shown_panels(layout) -> list:
    """Every panel reachable from the root layout, through Tab panels too."""
    found, todo = [], tree_panels(layout['layout'])
    while todo:
        panel = todo.pop(0)
        found.append(panel)
        for tab in layout['configById'].get(panel, {}).get('tabs', []):
            todo += tree_panels(tab['layout'])
    return found


def script_topics(layout) -> tuple:
    """Return (inputs, outputs) of the layout's user scripts, read from their source."""
    inputs, outputs = set(), set()
    for script in layout['userNodes'].values():
        source = script['sourceCode']
        listed = re.search(r'export const inputs = \[([^\]]*)\]', source).group(1)
        inputs.update(re.findall(r'"([^"]+)"', listed))
        outputs.add(re.search(r'export const output = "([^"]+)"', source).group(1))
    return inputs, outputs


def panel_topics(layout) -> dict:
    """Return {topic: [panel ids]} of every topic a panel reads (message paths cut at '.')."""
    used = {}
    for panel, config in layout['configById'].items():
        paths = [config.get('imageMode', {}).get('imageTopic'), config.get('topicPath')]
        paths += [path['value'] for path in config.get('paths', [])]
        for path in filter(None, paths):
            used.setdefault(path.split('.')[0], []).append(panel)
    return used


def layout_problems(layout, recorded: set, namespace: str = NAMESPACE) -> list:
    """Everything wrong with the layout's topics, given the recorded topic names."""
    problems = []
    inputs, outputs = script_topics(layout)
    for topic, panels in panel_topics(layout).items():
        if topic.startswith(SCRIPT_PREFIX):
            if topic not in outputs:
                problems.append(f'{panels} read {topic}, which no user script of the layout '
                                'publishes')
        else:
            inputs.add(topic)
    for topic in sorted(inputs):
        if not topic.startswith(namespace + '/'):
            problems.append(f'{topic} is outside the robot namespace {namespace}')
        elif topic not in recorded:
            problems.append(f'{topic} is not a recorded topic')
    return problems


def contract_topics(namespace: str = NAMESPACE) -> set:
    """The topics a real station's recorder records, resolved under `namespace`."""
    return {f'{namespace}/{spec.name}' for spec in contract(CAMERA_NAMES, sim=False)}


def test_the_layout_is_a_foxglove_layout():
    layout = load_layout()
    assert {'configById', 'layout', 'globalVariables', 'userNodes', 'playbackConfig'} <= set(
        layout)
    shown = shown_panels(layout)
    assert sorted(shown) == sorted(layout['configById']), 'panels shown == panels configured'
    assert {panel.split('!')[0] for panel in shown} <= PANEL_TYPES
    for script in layout['userNodes'].values():
        assert set(script) == {'name', 'sourceCode'}
    _, outputs = script_topics(layout)
    assert all(output.startswith(SCRIPT_PREFIX) for output in outputs)


def test_every_topic_of_the_layout_is_recorded_by_the_contract():
    assert layout_problems(load_layout(), contract_topics()) == []


def test_the_layout_shows_what_a_station_needs():
    layout = load_layout()
    used = panel_topics(layout)
    inputs, outputs = script_topics(layout)
    for cam in CAMERA_NAMES:
        assert any(panel.startswith('Image!') for panel in used[
            f'{NAMESPACE}/{camera_topic(cam)}']), cam
    # Every joint's command and measurement share one plot.
    for joint in range(14):
        together = [config for config in layout['configById'].values() if {
            f'{NAMESPACE}/joint_commands.position[{joint}]',
            f'{NAMESPACE}/joint_states.position[{joint}]'} <= {
            path['value'] for path in config.get('paths', [])}]
        assert together, f'no plot of joint {joint}: command vs measured'
    # d(o, g) is JSON in a String: a user script parses it, a Plot draws the number.
    assert f'{NAMESPACE}/{topics.STEPS_TO_GO}' in inputs
    assert any(topic in outputs and any(panel.startswith('Plot!') for panel in panels)
               for topic, panels in used.items())
    for topic in (topics.SUCCESS_DETECTED, topics.EPISODE_STATUS):
        assert f'{NAMESPACE}/{topic}' in used, topic


def test_the_check_catches_topics_the_recorder_does_not_record():
    layout = load_layout()
    broken = copy.deepcopy(layout)
    broken['configById']['Image!cam_low']['imageMode']['imageTopic'] = '/aloha1/cam_low/image'
    broken['configById']['RawMessages!success']['topicPath'] = '/aloha2/success/detected'
    plot = broken['configById']['Plot!steps_to_go']['paths'][0]
    plot['value'] = plot['value'].replace('steps_to_go.', 'steps_togo.')
    problems = layout_problems(broken, contract_topics())
    assert problems == [
        "['Plot!steps_to_go'] read /studio_script/aloha1/steps_togo, which no user script of "
        'the layout publishes',
        '/aloha1/cam_low/image is not a recorded topic',
        '/aloha2/success/detected is outside the robot namespace /aloha1']
    # A contract that lost a topic fails the shipped layout too.
    assert layout_problems(layout, contract_topics() - {'/aloha1/success/detected'}) == [
        '/aloha1/success/detected is not a recorded topic']


def test_another_robot_is_one_substitution_away():
    """README: `sed 's#/aloha1/#/aloha2/#g'` makes the layout of robot aloha2."""
    text = open(LAYOUT).read().replace('/aloha1/', '/aloha2/')
    layout = json.loads(text)
    assert '/aloha1' not in text
    assert layout_problems(layout, contract_topics('/aloha2'), '/aloha2') == []


@pytest.mark.graph
def test_every_topic_of_the_layout_is_in_a_bag_the_recorder_wrote(tmp_path):
    """A real recorder's bag (sim lockstep robot, one rendering camera) holds every topic."""
    init_ros()
    overrides = {'launch': {'cameras': list(CAMERA_NAMES), 'lockstep': True},
                 'recorder_node': {'bag_dir': str(tmp_path / 'bags')},
                 # No controller answers: step every 0.2 s instead of waiting 1 s per tick.
                 'robot_node': {'lockstep_timeout_s': 0.2}}
    specs = build_graph(load_config(config_path('sim.yaml')), NAMESPACE, overrides)
    # The recorder subscribes to all four cameras; one rendering camera keeps the test light.
    specs = [spec for spec in specs
             if spec.executable != 'camera_node' or spec.name == 'cam_high_camera_node']
    try:
        with GraphRunner(specs, str(tmp_path / 'logs')) as runner:
            probe = GraphProbe(NAMESPACE, ['cam_high'])
            assert probe.spin_until(lambda: probe.joints and probe.frames['cam_high'], 120.0,
                                    check=runner.check), 'the sim graph did not start'
            bag = record_episode(probe, probe.executor_, hold_s=2.0, check=runner.check)
            probe.destroy_node()
    finally:
        rclpy.shutdown()
    counts = bag_topics(bag)
    layout = load_layout()
    assert layout_problems(layout, set(counts)) == []
    # The bag is not empty: what ran was recorded.
    for topic in (topics.JOINT_STATES, camera_topic('cam_high'), topics.EPISODE_EVENTS):
        assert counts[f'{NAMESPACE}/{topic}'] > 0, (topic, counts)
