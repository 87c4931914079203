"""Stations as Ray actors, for a fleet past one machine (`selfimprove practice --ray ADDRESS`).

The same `StationWorker` as a local station process, one actor per station with one CPU each;
the learner stays in the calling process. Ray is optional (`pip install ray`); every path a
station is handed (models, the bag root) must be on a file system the Ray workers share.
Interface of `fleet.ProcessStations`: send, poll, alive, close.
"""


def import_ray():
    """Import Ray, or say how to get it."""
    try:
        import ray
    except ImportError as error:
        raise RuntimeError('--ray needs the ray package on this machine and every worker '
                           '(pip install "ray[default]"); without --ray the stations run as '
                           'local processes') from error
    return ray


class RayStations:
    """`count` StationWorker actors on the Ray cluster at `address` ('local' starts one here)."""

    def __init__(self, count: int, worker_args: dict, address: str = 'local',
                 num_cpus: int = None):
        ray = self.ray = import_ray()
        from selfimprove_ros.fleet.station_worker import StationWorker
        if not ray.is_initialized():
            options = {'address': None if address == 'local' else address,
                       'include_dashboard': False, 'log_to_driver': False,
                       'configure_logging': False}
            if address == 'local' and num_cpus:
                options['num_cpus'] = num_cpus
            ray.init(**options)
        actor = ray.remote(num_cpus=1, max_restarts=0)(StationWorker)
        self.actors = [actor.remote(index=index, **worker_args) for index in range(count)]
        self.calls = {}   # object ref -> (station index, kind)
        self.dead = set()
        for index, handle in enumerate(self.actors):
            self.calls[handle.__ray_ready__.remote()] = (index, 'started')

    def send(self, index: int, kind: str, payload):
        """Call take_model (kind 'model') or run (kind 'episode') on station `index`."""
        method = self.actors[index].take_model if kind == 'model' else self.actors[index].run
        self.calls[method.remote(payload)] = (index, kind)

    def poll(self, timeout_s: float):
        """Return the next finished call as (index, kind, reply), or None after `timeout_s`."""
        if not self.calls:
            return None
        ready, _ = self.ray.wait(list(self.calls), num_returns=1, timeout=timeout_s)
        if not ready:
            return None
        index, kind = self.calls.pop(ready[0])
        try:
            reply = self.ray.get(ready[0])
        except self.ray.exceptions.RayActorError as error:
            self.dead.add(index)
            return (index, kind, {'error': f'station {index} died: {error}'})
        except self.ray.exceptions.RayTaskError as error:
            return (index, kind, {'error': str(error.cause or error)})
        return (index, kind, {} if kind == 'started' else reply)

    def alive(self, index: int) -> bool:
        """Tell whether station `index`'s actor still answers."""
        return index not in self.dead

    def close(self):
        """End the actors (the cluster goes on; a local one started here stops)."""
        for handle in self.actors:
            self.ray.kill(handle)
        self.ray.shutdown()
