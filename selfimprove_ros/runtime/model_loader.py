"""Loading models off the control loop: a worker thread verifies, opens and warms them up.

The control loop only polls for finished loads between ticks, so a swap never stalls a tick.
Session creation and warm-up run inside ONNX Runtime (outside the GIL), so the thread barely
competes with the loop.
"""

import os
import queue
import threading

from selfimprove_ros.runtime.onnx_model import load_model, ModelRejected


class ModelLoader:
    """Load model directories one at a time in a background thread.

    `roots` (None: anywhere) and `key` (b'': unsigned is fine) are passed to load_model.
    """

    def __init__(self, filename: str, cameras, providers: str, budget_s: float, roots=None,
                 key: bytes = b''):
        self.filename, self.cameras = filename, list(cameras)
        self.providers, self.budget_s = providers, budget_s
        self.roots, self.key = roots, key
        self.requests, self.results = queue.Queue(), queue.Queue()
        self.requested = set()  # absolute paths of every directory ever requested
        self.thread = threading.Thread(target=self._work, name='model-loader', daemon=True)
        self.thread.start()

    def request(self, model_dir: str):
        """Queue `model_dir` for loading."""
        self.requested.add(os.path.abspath(model_dir))
        self.requests.put(model_dir)

    def request_newest(self, directory: str):
        """Queue the newest model directory in `directory` that was never requested."""
        fresh = newest_unseen_model(directory, self.requested)
        if fresh:
            self.request(fresh)

    def poll(self) -> list:
        """Return finished loads: LoadedModel or ModelRejected, in completion order."""
        done = []
        while True:
            try:
                done.append(self.results.get_nowait())
            except queue.Empty:
                return done

    def stop(self):
        """Stop the worker after its current load."""
        self.requests.put(None)

    def _work(self):
        while True:
            model_dir = self.requests.get()
            if model_dir is None:
                return
            try:
                self.results.put(load_model(model_dir, self.filename, self.cameras,
                                            self.providers, threads=1, budget_s=self.budget_s,
                                            roots=self.roots, key=self.key))
            except ModelRejected as error:
                self.results.put(error)
            except Exception as error:  # noqa: B902 - any failure rejects the model, not the node
                self.results.put(ModelRejected(f'model in {model_dir} failed to load: {error}'))


def newest_unseen_model(directory: str, seen) -> str:
    """Return the newest model directory (with manifest.json) in `directory` not in `seen`.

    `seen` holds absolute paths; '' when there is none (or the directory cannot be read).
    """
    try:
        entries = [os.path.join(directory, name) for name in os.listdir(directory)
                   if not name.startswith('.')]
    except OSError:
        return ''
    fresh = [path for path in entries if os.path.isfile(os.path.join(path, 'manifest.json'))
             and os.path.abspath(path) not in seen]
    return max(fresh, key=os.path.getmtime) if fresh else ''
