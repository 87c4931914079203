"""ACT-format HDF5 demonstrations -> episode bags that follow the topic contract.

ACT (Zhao et al., 2023) stores one episode per file: `/observations/qpos` [T, 14],
`/observations/images/<camera>` [T, H, W, 3] uint8 and `/action` [T, 14], recorded at 50 Hz,
with an optional root attribute `sim`. Conversion choices:

- Ticks: every `fps * control_period_s`-th frame (every 5th at 50 Hz -> 10 Hz), starting with
  frame 0; a frame rate that is not a whole multiple of the control rate is refused rather
  than resampled.
- Action of a tick: the last 50 Hz command issued within the tick, `/action[i + stride - 1]`,
  i.e. where the arms were being driven when the next tick's observation was taken. The
  first command of the tick would be only 20 ms ahead of the observation.
- Grippers: ACT's sim and real recorders already normalise qpos and action grippers to
  0 (closed) .. 1 (open) (PUPPET/MASTER_GRIPPER_POSITION_NORMALIZE_FN), the contract's scale,
  so values are copied; a gripper far outside [0, 1] means unnormalised data and is refused.
- Cameras: ACT sim names top/angle/left_wrist/right_wrist become cam_high/cam_low/
  cam_left_wrist/cam_right_wrist; names already in the contract are kept.
- Images as the ALOHA recorder (aloha/record_episodes.py) writes them: raw [T, H, W, 3] uint8,
  or, with the root attribute `compress` true, one JPEG per row of a [T, padded] uint8 dataset
  (zero-padded to the longest, lengths in `/compress_len`). Rows are decoded with OpenCV as
  ACT's own loader does, only for the frames a tick uses; the decoded array keeps the channel
  order it was recorded in (`image_order='bgr'` swaps it for recorders that stored BGR).
- `/observations/qvel` and `/observations/effort` are optional and not imported.
- Outcome 'success' with the last tick as success: ACT datasets hold successful
  demonstrations only (the scripted collector discards failures), so no sim/success is written.
"""

import hashlib
import os
import re
import time

import numpy as np

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.core.joints import GRIPPER_INDICES, NUM_JOINTS
from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS, SIM_CAMERAS

from .bag_messages import image_cdr, joint_state_cdr, string_cdr
from .bag_streams import IMAGE, JOINT_STATE, STRING

ACT_CAMERAS = {act: cam for cam, act in SIM_CAMERAS.items()}
POLICY_VERSION = 'act_demonstration'


def contract_camera(name: str) -> str:
    """Return the contract camera of an ACT camera name; ValueError for unknown names."""
    if name in SIM_CAMERAS:
        return name
    if name in ACT_CAMERAS:
        return ACT_CAMERAS[name]
    raise ValueError(f'unknown ACT camera {name!r}; expected one of {list(ACT_CAMERAS)} or '
                     f'{list(SIM_CAMERAS)}')


def task_from_name(name: str) -> str:
    """Guess the task from an ACT dataset name, e.g. 'sim_transfer_cube_scripted'."""
    return re.sub(r'_(scripted|human)$', '', re.sub(r'^sim_', '', name)) or 'act'


def tick_frames(num_frames: int, fps: float, control_period_s: float):
    """Return (observation frames, command frames) of the ticks of a `fps` recording."""
    stride = fps * control_period_s
    if stride < 1 or abs(stride - round(stride)) > 1e-6:
        raise ValueError(f'--fps {fps:g} is not a whole multiple of the control rate '
                         f'{1 / control_period_s:g} Hz; resample the recording first')
    stride = int(round(stride))
    frames = np.arange(0, num_frames, stride)
    return frames, np.minimum(frames + stride - 1, num_frames - 1)


class JpegFrames:
    """The compressed image rows of one camera, decoded on access: data[i] is RGB [H, W, 3]."""

    def __init__(self, path: str, name: str, rows, swap_bgr: bool):
        self.path, self.name, self.rows, self.swap_bgr = path, name, rows, swap_bgr

    def __len__(self):
        """Return the number of frames."""
        return len(self.rows)

    def __getitem__(self, index):
        """Decode frame `index`; ValueError naming the file, camera and frame if it is no JPEG."""
        import cv2
        image = cv2.imdecode(np.asarray(self.rows[index], dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'{self.path}: /observations/images/{self.name} frame {index} is '
                             'not a JPEG image (compress is true)')
        return image[..., ::-1] if self.swap_bgr else image


def read_act_file(path, image_order='rgb'):
    """Open an ACT episode; return (h5 file, qpos, action, {contract camera: frames}, sim).

    Frames are the raw image dataset, or `JpegFrames` for a compressed file.
    """
    import h5py
    if image_order not in ('rgb', 'bgr'):
        raise ValueError(f"image_order must be 'rgb' or 'bgr', got {image_order!r}")
    h5 = h5py.File(path, 'r')
    try:
        qpos, action = h5['/observations/qpos'][()], h5['/action'][()]
        raw = dict(h5['/observations/images'].items())
        compressed = bool(h5.attrs.get('compress', False))
        if compressed:
            check_compressed(path, raw, h5.get('/compress_len'), len(qpos))
            images = {contract_camera(name): JpegFrames(path, name, data, image_order == 'bgr')
                      for name, data in raw.items()}
            for frames in images.values():
                frames[0]  # a row that is no JPEG is refused before any bag is started
        else:
            images = {contract_camera(name): data for name, data in raw.items()}
        check_act_arrays(qpos, action, {} if compressed else images)
    except KeyError as error:
        h5.close()
        raise ValueError(f'{path} is not an ACT episode (needs /observations/qpos, /action, '
                         f'/observations/images/<camera>): {error}') from None
    except ValueError as error:
        h5.close()
        raise ValueError(f'{path}: {error}') from None
    return h5, qpos, action, images, bool(h5.attrs.get('sim', False))


def check_compressed(path, images, lengths, frames: int):
    """Raise ValueError unless compressed rows and /compress_len fit the recorder's layout."""
    for name, data in images.items():
        if data.ndim != 2 or data.shape[0] != frames or data.dtype != np.uint8:
            raise ValueError(f'/observations/images/{name} is {data.dtype} {data.shape}; with '
                             f'compress true the ALOHA recorder writes uint8 [{frames}, bytes] '
                             '(one zero-padded JPEG per row)')
    if lengths is None:
        return  # not needed to decode: a JPEG ends at its own end marker
    lengths = np.asarray(lengths)
    if lengths.shape != (len(images), frames):
        raise ValueError(f'/compress_len is {lengths.shape}, expected ({len(images)} cameras, '
                         f'{frames} frames)')
    longest = min(data.shape[1] for data in images.values())
    if lengths.max() > longest:
        raise ValueError(f'/compress_len says a frame has {int(lengths.max())} bytes but the '
                         f'image rows hold {longest}; the file is truncated or not from the '
                         'ALOHA recorder')


def check_act_arrays(qpos, action, images):
    """Raise ValueError unless shapes, dtypes and gripper scale fit the contract.

    `images` holds raw (uncompressed) image datasets only.
    """
    if qpos.ndim != 2 or qpos.shape[1] != NUM_JOINTS or action.shape != qpos.shape:
        raise ValueError(f'qpos {qpos.shape} and action {action.shape} must both be '
                         f'[T, {NUM_JOINTS}]')
    for cam, data in images.items():
        if data.ndim != 4 or data.shape[0] != len(qpos) or data.shape[3] != 3 or \
                data.dtype != np.uint8:
            raise ValueError(f'images of {cam} are {data.dtype} {data.shape}, expected uint8 '
                             f'[{len(qpos)}, H, W, 3] (or JPEG rows with the root attribute '
                             'compress true, as the ALOHA recorder writes them)')
    grippers = np.concatenate([qpos[:, GRIPPER_INDICES], action[:, GRIPPER_INDICES]])
    if grippers.min() < -0.5 or grippers.max() > 1.5:
        raise ValueError(f'gripper values span [{grippers.min():.3g}, {grippers.max():.3g}]; '
                         f'expected ACT-normalised 0..1 (closed..open)')


def import_act_episode(path, out_dir, task=None, instruction=None, robot='aloha1',
                       fps=50.0, control_period_s=0.1, image_order='rgb'):
    """Convert the ACT HDF5 file `path` into an episode bag under `out_dir`; return its path."""
    h5, qpos, action, images, sim = read_act_file(path, image_order)
    with h5:
        task = task or task_from_name(os.path.basename(os.path.dirname(os.path.abspath(path))))
        frames, command_frames = tick_frames(len(qpos), fps, control_period_s)
        digest = hashlib.sha1(np.ascontiguousarray(qpos).tobytes()).hexdigest()[:8]
        stem = re.sub(r'[^A-Za-z0-9._-]+', '-', os.path.splitext(os.path.basename(path))[0])
        episode = EpisodeMetadata(
            robot=robot, task=task, policy_version=POLICY_VERSION,
            instruction=INSTRUCTIONS.get(task, '') if instruction is None else instruction,
            episode_id=f'{stem.strip("-") or "act"}-{digest}',
            start_time_ns=os.stat(path).st_mtime_ns,
            extra={'source': 'act_hdf5', 'source_path': os.path.abspath(path),
                   'source_fps': fps, 'sim': sim,
                   'compressed': any(isinstance(f, JpegFrames) for f in images.values())})
        period_ns = int(round(control_period_s * 1e9))
        writer = EpisodeBagWriter(out_dir, episode, max_chunk_s=1.0)
        with writer:
            _write_ticks(writer, episode, qpos[frames], action[command_frames],
                         {cam: (data, frames) for cam, data in images.items()}, period_ns)
            end_ns = episode.start_time_ns + (len(frames) - 1) * period_ns
            return writer.finish('success', 'ACT demonstration (successful by construction)',
                                 end_time_ns=end_ns)


def _write_ticks(writer, episode, joints, commands, images, period_ns):
    """Write the start event, one observation and command per tick, and the end event."""
    name = {role: f'/{episode.robot}/{topic}' for role, topic in (
        ('joints', topics.JOINT_STATES), ('commands', topics.JOINT_COMMANDS),
        ('events', topics.EPISODE_EVENTS))}
    for role, msgtype in (('joints', JOINT_STATE), ('commands', JOINT_STATE),
                          ('events', STRING)):
        writer.add_topic(name[role], msgtype)
    for cam in images:
        writer.add_topic(f'/{episode.robot}/{topics.camera_topic(cam)}', IMAGE)

    def event(kind, stamp, **fields):
        text = make_event(kind, episode_id=episode.episode_id, **fields)
        writer.write(name['events'], string_cdr(text), stamp)

    t0 = episode.start_time_ns
    event('start', t0, robot=episode.robot, task=episode.task,
          instruction=episode.instruction, policy_version=episode.policy_version)
    for k in range(len(joints)):
        stamp = t0 + k * period_ns
        writer.write(name['joints'], joint_state_cdr(stamp, joints[k]), stamp)
        for cam, (data, frames) in images.items():
            writer.write(f'/{episode.robot}/{topics.camera_topic(cam)}',
                         image_cdr(stamp, data[frames[k]], cam), stamp)
        writer.write(name['commands'], joint_state_cdr(stamp, commands[k]), stamp)
    event('end', t0 + (len(joints) - 1) * period_ns, outcome='success')


def import_act_dir(source, out_dir, log=print, **options):
    """Import every .hdf5/.h5 file in `source` (or the file itself); return (bags, failures).

    failures are (file, reason); one bad file does not stop the others.
    """
    if os.path.isdir(source):
        files = sorted(os.path.join(source, f) for f in os.listdir(source)
                       if f.endswith(('.hdf5', '.h5')))
        if not files:
            raise FileNotFoundError(f'no .hdf5 or .h5 files in {source}')
    elif os.path.exists(source):
        files = [source]
    else:
        raise FileNotFoundError(f'{source} does not exist')
    bags, failures = [], []
    for file in files:
        started = time.monotonic()
        try:
            bags.append(import_act_episode(file, out_dir, **options))
        except (ValueError, OSError) as error:
            failures.append((file, str(error)))
            log(f'FAILED {file}: {error}')
            continue
        log(f'{file} -> {bags[-1]} ({time.monotonic() - started:.1f} s)')
    return bags, failures
