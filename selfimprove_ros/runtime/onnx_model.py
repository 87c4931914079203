"""Loading an exported model for the robot: verify, open with ONNX Runtime, warm up, time.

Every check a hot-swap needs happens here, before the model is handed to a node, so a bad model
is rejected with its reason while the running one keeps going: manifest sha256, signature against
the robot's cameras and joints, finite outputs on a warm-up run, inference time within budget.
"""

from dataclasses import dataclass
import os
import time

import numpy as np

from selfimprove_ros.core.joints import JOINT_NAMES
from selfimprove_ros.model.codec import ModelCodec
from selfimprove_ros.model.manifest import verify_model_dir
from selfimprove_ros.model.model_config import ModelConfig

GPU_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider')
# What a node's `providers` setting may say: auto (GPU when ONNX Runtime has one), cpu, or one.
PROVIDERS = ('auto', 'cpu', 'CUDAExecutionProvider', 'TensorrtExecutionProvider')
_DTYPES = {'tensor(uint8)': 'uint8', 'tensor(float)': 'float32', 'tensor(int64)': 'int64'}


class ModelRejected(ValueError):
    """A model that failed a load-time check; the message says which and why."""


@dataclass
class LoadedModel:
    """A verified ONNX Runtime session and what is needed to feed it."""

    model_dir: str
    filename: str
    version: str
    manifest: dict
    codec: ModelCodec
    session: object
    providers: list
    inference_s: float  # median warm-up inference time [s]

    def run(self, images: np.ndarray, joints: np.ndarray, instruction: np.ndarray) -> list:
        """Run the graph on one batch; return its outputs in manifest order."""
        return self.session.run(None, {'images': images, 'joints': joints,
                                       'instruction': instruction})


def choose_providers(preference: str) -> list:
    """Return execution providers: 'auto' = TensorRT/CUDA when installed, then CPU."""
    import onnxruntime as ort
    available = ort.get_available_providers()
    if preference == 'cpu':
        return ['CPUExecutionProvider']
    if preference == 'auto':
        return [p for p in GPU_PROVIDERS if p in available] + ['CPUExecutionProvider']
    if preference not in available:
        raise ModelRejected(f'execution provider {preference!r} is not in this onnxruntime '
                            f'build (available: {available}); install onnxruntime-gpu or use '
                            "'auto'/'cpu'")
    return [preference, 'CPUExecutionProvider']


def check_signature(session, manifest: dict, filename: str):
    """Compare the session's inputs/outputs with the manifest's signature."""
    expected = manifest['signature']
    for spec, actual in zip(expected['inputs'], session.get_inputs()):
        _compare(filename, 'input', spec, actual)
    if len(session.get_inputs()) != len(expected['inputs']):
        raise ModelRejected(f'{filename} has {len(session.get_inputs())} inputs, manifest '
                            f'lists {len(expected["inputs"])}')
    for spec, actual in zip(expected[filename], session.get_outputs()):
        _compare(filename, 'output', spec, actual)


def _compare(filename: str, kind: str, spec: dict, actual):
    fixed = [dim for dim in spec['shape'] if dim != 'batch']
    actual_fixed = [dim for dim in actual.shape[1:]] if spec['shape'][0] == 'batch' \
        else list(actual.shape)
    if actual.name != spec['name'] or _DTYPES.get(actual.type) != spec['dtype'] or \
            [d for d in actual_fixed if not isinstance(d, str)] != fixed:
        raise ModelRejected(
            f'{filename} {kind} {actual.name} {actual.type} {actual.shape} does not match the '
            f'manifest ({spec["name"]} {spec["dtype"]} {spec["shape"]}); re-export the model')


def check_robot(codec: ModelCodec, cameras, version: str):
    """Require the robot to provide every camera (in any order) and the same joints."""
    missing = [cam for cam in codec.config.cameras if cam not in cameras]
    if missing:
        raise ModelRejected(f'model {version} needs cameras {missing} that this robot does not '
                            f'run (it runs {list(cameras)}); add them or use another model')
    if len(codec.joint_mean) != len(JOINT_NAMES):
        raise ModelRejected(f'model {version} expects {len(codec.joint_mean)} joints, the robot '
                            f'has {len(JOINT_NAMES)}')


def warm_up(model: LoadedModel, runs: int = 5) -> float:
    """Run example inputs; require finite outputs; return the median time [s]."""
    from selfimprove_ros.model.onnx_export import example_inputs
    images, joints, instruction = example_inputs(model.codec, batch=1, seed=7)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        outputs = model.run(images, joints, instruction)
        times.append(time.perf_counter() - started)
        for output in outputs:
            if not np.all(np.isfinite(output)):
                raise ModelRejected(f'model {model.version} ({model.filename}) outputs NaN or inf '
                                    'on the warm-up input; it is broken, keep the current one')
    return float(np.median(times))


def check_model_root(model_dir: str, roots):
    """Raise ModelRejected unless `model_dir` (symlinks resolved) lies inside one of `roots`."""
    real = os.path.realpath(model_dir)
    for root in roots:
        allowed = os.path.realpath(root)
        if real == allowed or real.startswith(allowed.rstrip(os.sep) + os.sep):
            return
    raise ModelRejected(f'model directory {model_dir} is outside the model roots {list(roots)}; '
                        'only models under them are loaded (add its directory to '
                        'policy_node.model_roots if it is yours)')


def load_model(model_dir: str, filename: str, cameras, providers: str = 'auto',
               threads: int = 1, budget_s: float = 0.0, roots=None,
               key: bytes = b'') -> LoadedModel:
    """Verify and open `filename` of `model_dir`; raise ModelRejected with the reason.

    With `roots` the directory must lie inside one of them; with `key` it must be signed.
    """
    import onnxruntime as ort
    if roots is not None:
        check_model_root(model_dir, roots)
    try:
        manifest = verify_model_dir(model_dir, required=(filename,), key=key)
        codec = ModelCodec.from_dict(manifest['codec'], ModelConfig(**manifest['model_config']))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelRejected(f'model in {model_dir} rejected: {error}') from error
    version = manifest['version']
    check_robot(codec, cameras, version)
    options = ort.SessionOptions()
    # One intra-op thread keeps a core free for the rest of the 10 Hz loop.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(os.path.join(model_dir, filename), options,
                                       providers=choose_providers(providers))
    except Exception as error:  # noqa: B902 - ORT raises its own exception types
        raise ModelRejected(f'{filename} of model {version} cannot be opened by ONNX Runtime: '
                            f'{error}') from error
    check_signature(session, manifest, filename)
    model = LoadedModel(model_dir, filename, version, manifest, codec, session,
                        session.get_providers(), 0.0)
    model.inference_s = warm_up(model)
    if budget_s and model.inference_s > budget_s:
        raise ModelRejected(f'model {version} needs {model.inference_s * 1e3:.1f} ms per '
                            f'inference on {model.providers[0]}, over the {budget_s * 1e3:.0f} ms '
                            'budget of a tick; use a smaller model or a GPU provider')
    return model
