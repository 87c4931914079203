"""ament_python package selfimprove_ros."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'selfimprove_ros'
NODES = ['robot_node', 'camera_node', 'recorder_node', 'expert_node', 'policy_node',
         'reward_scorer_node', 'success_detector_node', 'episode_manager_node', 'trainer_node']

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config',
         glob('config/*.yaml') + glob('config/*.xml') + glob('config/*.json')),
        (f'share/{PACKAGE}/config/sros2', glob('config/sros2/*.xml')),
        (f'share/{PACKAGE}/models', glob('models/*.md')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='selfimprove_ros maintainers',
    maintainer_email='maintainers@selfimprove.invalid',
    description='Self-improving ALOHA policies on ROS 2 (arXiv 2509.15155).',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [f'selfimprove = {PACKAGE}.cli.main:main'] + [
            f'{node} = {PACKAGE}.nodes.{node}:main' for node in NODES],
    },
)
