"""The episode in one place: its events and the episode manager's logic, without ROS.

`events`: the contract every node follows; `state`: the manager's state machine; `cycle`: one
robot's reset, start, watch and end; `watch`: what is observed about an episode; `progress`:
when a driven episode ends; `episode_manager_config`: the manager's settings.
"""
