"""The station a fleet process or Ray actor holds: built once, then models and episodes.

Everything it is handed and returns is plain data (paths, dicts), so the same worker runs in a
local process (fleet/fleet.py) or as a Ray actor on another machine (fleet/ray_stations.py);
there the model directories and the bag root must be on a file system both machines share.
"""

import logging
import os

from selfimprove_ros.fleet.station import Station
from selfimprove_ros.fleet.station_settings import settings_from_graph, StationConfig
from selfimprove_ros.runtime.onnx_model import load_model, ModelRejected


def aloha_world(settings):
    """Return the simulated ALOHA of the station's task, cameras and camera size."""
    os.environ.setdefault('MUJOCO_GL', 'egl')  # headless: no display on stations
    from selfimprove_ros.fleet.worlds import AlohaWorld
    return AlohaWorld(settings.task, settings.robot_config.control_period_s, settings.cameras,
                      *settings.camera_size)


def point_mass_world(settings):
    """Return the toy point-mass task (sim/point_mass.py) as a world."""
    from selfimprove_ros.fleet.worlds import EnvWorld
    from selfimprove_ros.sim.point_mass import PointMass
    return EnvWorld(PointMass())


WORLDS = {'aloha': aloha_world, 'point_mass': point_mass_world}


class StationWorker:
    """One station and its reward model; `take_model` and `run` return plain dicts."""

    def __init__(self, specs, robot: str, reward_model_dir: str, world: str = 'aloha',
                 station: dict = None, sample_seed: int = 0, index: int = 0):
        self.index = index
        self.log = logging.getLogger(f'station{index}')
        self.settings = settings_from_graph(specs, robot, StationConfig(**(station or {})))
        if world not in WORLDS:
            raise ValueError(f'unknown world {world!r}; choose one of {sorted(WORLDS)}')
        world = WORLDS[world](self.settings)
        reward = load_model(reward_model_dir, 'reward.onnx', world.cameras,
                            providers=self.settings.scorer.providers)
        self.station = Station(self.settings, world, reward, self.log, sample_seed)

    def take_model(self, model_dir: str) -> dict:
        """Verify and offer a policy; return {'version'} or {'error'} (the live one stays)."""
        policy = self.settings.policy
        try:
            model = load_model(model_dir, 'policy.onnx', self.station.cameras, policy.providers,
                               budget_s=policy.inference_budget_s)
        except ModelRejected as error:
            self.station.offer(error)
            return {'error': str(error), 'version': self.station.version}
        self.station.offer(model)
        return {'version': self.station.version}

    def run(self, job: dict) -> dict:
        """Run one episode {'seed', 'episode_id', 'bag_root'}; return its EpisodeResult dict."""
        if not self.station.version:
            raise RuntimeError('no policy is live on this station; take_model first')
        os.makedirs(job['bag_root'], exist_ok=True)
        return self.station.run_episode(job['seed'], job['episode_id'],
                                        job['bag_root']).as_dict()

    def close(self):
        """Release the station's world."""
        self.station.close()
