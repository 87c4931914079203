"""A fleet of sim stations: episodes out to whichever station is free, results back.

Like the paper's several robots beside one learner (and RLlib's env runners): each station
holds its world, the frozen reward model and a read-only policy; the fleet hands every station
the same model directory between episodes, and one episode job at a time. A station that dies
costs its running episode, which is marked a fault in its bag (never trained on); the fleet
goes on with the others and says so. Stations run as local processes (`ProcessStations`, the
default: one per core) or as Ray actors (`fleet/ray_stations.py`) behind the same interface.
"""

import multiprocessing
import os
import queue

from selfimprove_ros.bag.episode_metadata import read_episode_file


def _station_main(index: int, worker_args: dict, inbox, outbox):
    """Run one station process: build the worker, then serve its inbox until None.

    `outbox` is the writing end of this station's pipe to the fleet.
    """
    from selfimprove_ros.fleet.station_worker import StationWorker
    try:
        worker = StationWorker(index=index, **worker_args)
    except Exception as error:  # noqa: B902 - the fleet says why the station could not start
        outbox.send((index, 'started', {'error': f'{type(error).__name__}: {error}'}))
        return
    outbox.send((index, 'started', {}))
    parent = os.getppid()
    try:
        while True:
            try:
                message = inbox.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    return  # the fleet's process died (killed): no orphan keeps a core busy
                continue
            if message is None:
                return
            kind, payload = message
            try:
                reply = worker.take_model(payload) if kind == 'model' else worker.run(payload)
            except Exception as error:  # noqa: B902 - one broken episode must not end a station
                reply = {'error': f'{type(error).__name__}: {error}'}
            outbox.send((index, kind, reply))
    finally:
        worker.close()


class ProcessStations:
    """Stations as local processes (spawned: no GL context or thread pool is forked).

    Each station answers on a pipe of its own: a station killed while it writes breaks only
    its own channel, where one shared queue could be left locked for every other station.
    """

    def __init__(self, count: int, worker_args: dict):
        context = multiprocessing.get_context('spawn')
        self.inboxes = [context.Queue() for _ in range(count)]
        pipes = [context.Pipe(duplex=False) for _ in range(count)]
        self.readers = {index: reader for index, (reader, _) in enumerate(pipes)}
        self.processes = [context.Process(target=_station_main, name=f'station{index}',
                                          args=(index, worker_args, self.inboxes[index],
                                                pipes[index][1]), daemon=True)
                          for index in range(count)]
        for process in self.processes:
            process.start()
        for _, writer in pipes:
            writer.close()  # the station holds the only writer: its death reads as EOF here

    def send(self, index: int, kind: str, payload):
        """Queue a 'model' (directory) or 'episode' (job) for station `index`."""
        self.inboxes[index].put((kind, payload))

    def poll(self, timeout_s: float):
        """Return the next (index, kind, reply), or None after `timeout_s`."""
        from multiprocessing.connection import wait
        for reader in wait(list(self.readers.values()), timeout_s):
            try:
                return reader.recv()
            except (EOFError, OSError):  # that station died; alive() says so
                self.readers = {i: r for i, r in self.readers.items() if r is not reader}
        return None

    def alive(self, index: int) -> bool:
        """Tell whether station `index` still runs."""
        return self.processes[index].is_alive()

    def pid(self, index: int) -> int:
        """Return station `index`'s process id."""
        return self.processes[index].pid

    def close(self):
        """Ask every station to finish, then make sure each has."""
        for index, inbox in enumerate(self.inboxes):
            if self.alive(index):
                inbox.put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


class Fleet:
    """Stations practising or evaluating one policy version at a time.

    `stations` is a ProcessStations or RayStations; `log` takes a line of text.
    """

    def __init__(self, stations, count: int, log=print, startup_timeout_s: float = 300.0):
        self.stations, self.log = stations, log
        self.live = set()
        self.faults = []  # descriptions of episodes lost with their station
        started = self._collect('started', range(count), startup_timeout_s)
        for index, reply in started.items():
            if 'error' in reply:
                self.log(f'station {index} did not start: {reply["error"]}')
            else:
                self.live.add(index)
        if not self.live:
            reasons = {reply.get('error', '') for reply in started.values()} or {'timed out'}
            raise RuntimeError(f'no station started: {"; ".join(sorted(reasons))}')

    def _collect(self, kind: str, indices, timeout_s: float) -> dict:
        """Wait for one `kind` reply from each of `indices`; a dead one gets an error."""
        waiting, replies = set(indices), {}
        while waiting:
            message = self.stations.poll(min(timeout_s, 1.0))
            if message is not None and message[1] == kind and message[0] in waiting:
                replies[message[0]] = message[2]
                waiting.discard(message[0])
                continue
            for index in [i for i in waiting if not self.stations.alive(i)]:
                replies[index] = {'error': f'station {index} died'}
                waiting.discard(index)
            timeout_s -= 1.0
            if timeout_s <= 0:
                replies.update({i: {'error': 'no answer'} for i in waiting})
                break
        return replies

    def take_model(self, model_dir: str) -> str:
        """Make `model_dir` live on every station; return its version.

        A model refused by every station raises RuntimeError with the stations' reason.
        """
        for index in self.live:
            self.stations.send(index, 'model', model_dir)
        replies = self._collect('model', sorted(self.live), 120.0)
        accepted = {reply['version'] for reply in replies.values() if 'error' not in reply}
        for index, reply in sorted(replies.items()):
            if 'error' in reply:
                self.log(f'station {index} refused {model_dir}: {reply["error"]}')
        self._forget_dead()
        if not accepted:
            reasons = sorted({reply['error'] for reply in replies.values()})
            raise RuntimeError(f'every station refused {model_dir}: {"; ".join(reasons)}')
        if len(accepted) > 1:
            raise RuntimeError(f'stations run different versions after taking {model_dir}: '
                               f'{sorted(accepted)}')
        return accepted.pop()

    def run(self, next_job, enough=lambda results: False, on_result=None) -> list:
        """Run episodes until `next_job()` returns None or `enough(results)`; return results.

        Episodes already running when it is enough still finish and count (they are of the
        same version). Each result is an EpisodeResult dict; an episode whose station died or
        failed is a 'fault' result with the reason, never trained on.
        """
        results, busy, exhausted = [], {}, False
        while True:
            for index in sorted(self.live - set(busy)):
                job = None if exhausted or enough(results) else next_job()
                if job is None:
                    exhausted = True
                    break
                self.stations.send(index, 'episode', job)
                busy[index] = job
            if not busy:
                return results
            message = self.stations.poll(1.0)
            if message is not None and message[1] == 'episode' and message[0] in busy:
                index, _, reply = message
                job = busy.pop(index)
                if not self.stations.alive(index):
                    self.live.discard(index)
                result = reply if 'error' not in reply else self._fault(job, reply['error'])
                results.append(result)
                if on_result:
                    on_result(result)
            for index in [i for i in busy if not self.stations.alive(i)]:
                job = busy.pop(index)
                self.live.discard(index)
                result = self._fault(job, f'station {index} died during the episode')
                results.append(result)
                if on_result:
                    on_result(result)
            if not self.live:
                raise RuntimeError('every station died; see the fleet log above')

    def _fault(self, job: dict, reason: str) -> dict:
        """Record an episode lost with its station; mark its bag a fault if one was begun."""
        bag = mark_fault(job['bag_root'], job['episode_id'], reason)
        self.faults.append(f'{job["episode_id"]} (seed {job["seed"]}): {reason}')
        self.log(f'episode {job["episode_id"]} (seed {job["seed"]}) is a fault: {reason}; '
                 f'the fleet goes on with {len(self.live)} station(s)')
        return {'episode_id': job['episode_id'], 'seed': job['seed'], 'bag': bag,
                'outcome': 'fault', 'cause': reason, 'ticks': 0, 'sim_success': False,
                'version': '', 'decisions': 0, 'labelled': False, 'phases': {}}

    def _forget_dead(self):
        for index in [i for i in self.live if not self.stations.alive(i)]:
            self.live.discard(index)
            self.log(f'station {index} died; the fleet goes on with {len(self.live)}')

    def close(self):
        """Stop every station."""
        self.stations.close()


def mark_fault(bag_root: str, episode_id: str, reason: str) -> str:
    """Mark the unfinished bag of `episode_id` under `bag_root` a fault; return its path or ''."""
    from selfimprove_ros.bag.episode_metadata import write_episode_file
    if not os.path.isdir(bag_root):
        return ''
    for name in os.listdir(bag_root):
        path = os.path.join(bag_root, name)
        if episode_id not in name or not os.path.isfile(os.path.join(path, 'episode.yaml')):
            continue
        try:
            meta = read_episode_file(path)
        except (OSError, ValueError):
            continue
        if meta.episode_id == episode_id and not meta.is_final:
            write_episode_file(path, meta.replace(outcome='fault', outcome_cause=reason))
            return path
    return ''


def start_fleet(worker_args: dict, stations: int, ray_address: str = '', log=print) -> Fleet:
    """Start `stations` stations (local processes, or Ray actors at `ray_address`) as a Fleet.

    `worker_args` are fleet.station_worker.StationWorker's (specs, robot, reward_model_dir,
    world, station, sample_seed).
    """
    if stations < 1:
        raise ValueError(f'--stations must be >= 1, got {stations}')
    if ray_address:
        from selfimprove_ros.fleet.ray_stations import RayStations
        backend = RayStations(stations, worker_args, ray_address)
    else:
        backend = ProcessStations(stations, worker_args)
    try:
        return Fleet(backend, stations, log)
    except BaseException:
        backend.close()
        raise
