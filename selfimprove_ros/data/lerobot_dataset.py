"""A LeRobot v3.0 dataset on disk as the importer reads it: files, columns, frames, checks."""

import json
import os

import numpy as np

from selfimprove_ros.data.lerobot_format import GRIPPER_RANGE, IMAGE_PREFIX, INFO_PATH, TASKS_PATH
from selfimprove_ros.data.lerobot_video import read_video_frames


def _read_json(path):
    if not os.path.isfile(path):
        raise ValueError(f'{path} does not exist; pass the root of a LeRobot v3 dataset (the '
                         'directory holding meta/info.json)')
    with open(path, encoding='utf-8') as stream:
        try:
            return json.load(stream)
        except ValueError as error:
            raise ValueError(f'{path} is not valid JSON ({error}); download it again') from None


def joint_order(info_path, key, feature, order='names') -> np.ndarray:
    """Return indices that put a 14-dim LeRobot feature into JOINT_NAMES order.

    `order='names'` maps by the feature's names (e.g. left_waist or left_waist.pos) when it has
    any, and takes contract order when it has none; `order='contract'` ignores the names.
    """
    from selfimprove_ros.core.joints import JOINT_NAMES, NUM_JOINTS
    shape = list(feature.get('shape') or [])
    if shape != [NUM_JOINTS]:
        raise ValueError(f'{info_path}: features["{key}"].shape is {shape}, expected '
                         f'[{NUM_JOINTS}] (ALOHA: 2 arms x (6 joints + gripper) in the order '
                         f'{list(JOINT_NAMES)}); this dataset is not from a bimanual ALOHA')
    names = feature.get('names')
    if isinstance(names, dict) and len(names) == 1:  # v2-era {"motors": [...]}
        names = next(iter(names.values()))
    if order == 'contract' or not names:
        return np.arange(NUM_JOINTS)
    if order != 'names':
        raise ValueError(f"joint order must be 'names' or 'contract', got {order!r}")
    plain = [str(name).lower().removesuffix('.pos') for name in names]
    unknown = [names[i] for i, name in enumerate(plain) if name not in JOINT_NAMES]
    if unknown or len(set(plain)) != NUM_JOINTS:
        raise ValueError(f'{info_path}: features["{key}"].names {list(names)} are not the 14 '
                         f'ALOHA joints {list(JOINT_NAMES)} (unknown: {unknown}); if the '
                         "values are in that order anyway, import with joint order 'contract' "
                         '(--joint-order contract)')
    return np.array([plain.index(name) for name in JOINT_NAMES])


def camera_mapping(info_path, features, mapping=None) -> dict:
    """Return {LeRobot image key: contract camera} of the dataset's image features.

    Keys observation.images.<cam> map to <cam> for the contract's cameras and ACT's sim names
    (top, angle, left_wrist, right_wrist); `mapping` {name or key: camera, '' = leave out}
    handles others. Raises ValueError naming the keys it cannot place.
    """
    from selfimprove_ros.core.topics import CAMERA_NAMES

    from .act_hdf5 import ACT_CAMERAS
    mapping = dict(mapping or {})
    out, unknown = {}, []
    for key, feature in features.items():
        if feature.get('dtype') not in ('video', 'image'):
            continue
        name = key.removeprefix(IMAGE_PREFIX)
        cam = mapping.get(key, mapping.get(name))
        if cam is None:
            cam = name if name in CAMERA_NAMES else ACT_CAMERAS.get(name)
        if cam == '':
            continue
        if cam not in CAMERA_NAMES:
            unknown.append(key)
            continue
        out[key] = cam
    if unknown:
        raise ValueError(f'{info_path}: image features {unknown} are not cameras of the contract '
                         f'{list(CAMERA_NAMES)}; map them with --camera NAME=cam_high (or '
                         'NAME= to leave one out)')
    if len(set(out.values())) != len(out):
        raise ValueError(f'{info_path}: two image features map to one camera ({out}); map '
                         'each to its own with --camera NAME=CAM')
    return out


class DatasetFiles:
    """A LeRobot v3 dataset on disk: info, tasks, episodes metadata, data files on demand."""

    def __init__(self, root):
        import pyarrow.parquet as pq
        self.root = os.path.abspath(os.fspath(root))
        self.info_path = os.path.join(self.root, INFO_PATH)
        self.info = _read_json(self.info_path)
        version = str(self.info.get('codebase_version', ''))
        if not version.startswith('v3.'):
            raise ValueError(f'{self.info_path}: codebase_version is {version!r}; this importer '
                             'reads v3.0 datasets. Convert a v2.1 dataset with LeRobot\'s '
                             'convert_dataset_v21_to_v30 (lerobot.datasets.v30 in 0.4, '
                             'lerobot.scripts later)')
        for name in ('fps', 'features', 'data_path'):
            if name not in self.info:
                raise ValueError(f'{self.info_path} lacks "{name}"; it is not a LeRobot v3 '
                                 'info.json')
        self.fps = self.info['fps']
        if not isinstance(self.fps, int) or self.fps < 1:
            raise ValueError(f'{self.info_path}: fps is {self.fps!r}, expected an int >= 1')
        self.features = self.info['features']
        self.tasks = self._tasks()
        paths = sorted(os.path.join(parent, name)
                       for parent, _, names in os.walk(os.path.join(self.root, 'meta',
                                                                    'episodes'))
                       for name in names if name.endswith('.parquet'))
        if not paths:
            raise ValueError(f'{self.root}/meta/episodes holds no .parquet file; the dataset '
                             'is incomplete, download it again')
        rows = []
        for path in paths:
            table = pq.read_table(path)
            table = table.drop([c for c in table.column_names if c.startswith('stats/')])
            rows.extend(table.to_pylist())
        if not rows:
            raise ValueError(f'{self.root}/meta/episodes lists no episode; the dataset is '
                             'empty or incomplete, download it again')
        self.episodes = sorted(rows, key=lambda row: row['episode_index'])
        self._data = {}

    def _tasks(self):
        import pyarrow.parquet as pq
        path = os.path.join(self.root, TASKS_PATH)
        if not os.path.isfile(path):
            raise ValueError(f'{path} does not exist; the dataset is incomplete, download it '
                             'again')
        table = pq.read_table(path)
        text = 'task' if 'task' in table.column_names else None
        meta = json.loads((table.schema.metadata or {}).get(b'pandas', b'{}'))
        index = [c for c in meta.get('index_columns', []) if isinstance(c, str)]
        text = text or (index[0] if index else None)
        if text is None or 'task_index' not in table.column_names:
            raise ValueError(f'{path} has columns {table.column_names}; expected task_index '
                             'and the task text (column or pandas index "task")')
        return dict(zip(table['task_index'].to_pylist(), table[text].to_pylist()))

    def data(self, row):
        """Return the data table of the file holding episode `row`."""
        import pyarrow.parquet as pq
        where = (row['data/chunk_index'], row['data/file_index'])
        if where not in self._data:
            path = os.path.join(self.root, self.info['data_path'].format(
                chunk_index=where[0], file_index=where[1]))
            if not os.path.isfile(path):
                raise ValueError(f'{path} does not exist but episode {row["episode_index"]} '
                                 'is stored there (meta/episodes data/chunk_index, '
                                 'data/file_index); download the dataset again')
            self._data = {where: (path, pq.read_table(path))}  # one file in memory at a time
        return self._data[where]

    def video_path(self, key, row):
        """Return the mp4 of feature `key` that holds episode `row`."""
        template = self.info.get('video_path') or ''
        return os.path.join(self.root, template.format(
            video_key=key, chunk_index=row[f'videos/{key}/chunk_index'],
            file_index=row[f'videos/{key}/file_index']))


def table_column(path, table, key, width=None) -> np.ndarray:
    """Return column `key` of a data table as an array ([N] or [N, width])."""
    if key not in table.column_names:
        raise ValueError(f'{path} has no column "{key}" that meta/info.json declares; the '
                         'dataset is damaged, download it again')
    column = table[key].combine_chunks()
    if width is None:
        return column.to_numpy(zero_copy_only=False)
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False))
    if values.size != len(column) * width:
        raise ValueError(f'{path}: column "{key}" holds {values.size} values for {len(column)} '
                         f'rows, expected {width} per row')
    return values.reshape(len(column), width)


def episode_table(dataset, row):
    """Return (path, rows of episode `row` ordered by frame_index)."""
    import pyarrow.compute as pc
    path, table = dataset.data(row)
    if 'episode_index' not in table.column_names:
        raise ValueError(f'{path} has no episode_index column; it is not LeRobot data')
    rows = table.filter(pc.equal(table['episode_index'], row['episode_index']))
    if 'frame_index' in rows.column_names:
        rows = rows.sort_by('frame_index')
        frame_index = table_column(path, rows, 'frame_index')
        if not np.array_equal(frame_index, np.arange(len(rows))):
            raise ValueError(f'{path}: frame_index of episode {row["episode_index"]} is not '
                             f'0..{len(rows) - 1}; the data file is damaged')
    if len(rows) != row['length']:
        raise ValueError(f'{path} holds {len(rows)} rows of episode {row["episode_index"]}, '
                         f'meta/episodes says length {row["length"]}; download it again')
    return path, rows


def check_grippers(path, key, values):
    """Raise ValueError unless the gripper columns of `values` [N, 14] are normalised."""
    from selfimprove_ros.core.joints import GRIPPER_INDICES, JOINT_NAMES
    grippers = values[:, list(GRIPPER_INDICES)]
    if grippers.size and not np.isfinite(grippers).any():
        raise ValueError(f'{path}: {key} grippers have no finite value; the column is empty '
                         'or corrupt, so the episode cannot say how the grippers moved')
    low, high = float(np.nanmin(grippers)), float(np.nanmax(grippers))
    if low < GRIPPER_RANGE[0] or high > GRIPPER_RANGE[1]:
        raise ValueError(
            f'{path}: {key} grippers ({", ".join(JOINT_NAMES[i] for i in GRIPPER_INDICES)}) '
            f'span [{low:.3g}, {high:.3g}]; the contract needs them normalised 0 (closed) .. 1 '
            '(open), as ACT and the ALOHA recorder store them. Normalise them first: '
            '(x - closed) / (open - closed)')


def decode_images(dataset, key, feature, row, path, rows):
    """Return the frames [N, H, W, 3] uint8 of image feature `key` for one episode."""
    count = len(rows)
    if feature['dtype'] == 'image':  # PNG/JPEG bytes inside the data parquet
        import cv2
        images = []
        for i, cell in enumerate(rows[key].to_pylist()):
            data = (cell or {}).get('bytes')
            image = None if data is None else cv2.imdecode(np.frombuffer(data, np.uint8),
                                                           cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f'{path}: "{key}" of frame {i} is not an encoded image')
            images.append(image[..., ::-1])
        return np.stack(images)
    shape = feature.get('shape') or []
    names = feature.get('names') or ['height', 'width', 'channels']
    dims = dict(zip(names, shape)) if len(names) == len(shape) == 3 else {}
    info = feature.get('info') or feature.get('video_info') or {}
    height = info.get('video.height') or dims.get('height')
    width = info.get('video.width') or dims.get('width')
    if not height or not width:
        raise ValueError(f'{dataset.info_path}: features["{key}"] gives no height and width '
                         '(shape with names height/width/channels, or info video.height)')
    video = dataset.video_path(key, row)
    if not os.path.isfile(video):
        raise ValueError(f'{video} does not exist but episode {row["episode_index"]} has its '
                         f'"{key}" frames there; download the videos too')
    timestamps = table_column(path, rows, 'timestamp') if 'timestamp' in rows.column_names \
        else np.arange(count) / dataset.fps
    start = float(row[f'videos/{key}/from_timestamp']) + float(timestamps[0])
    return read_video_frames(video, start, count, dataset.fps, int(height), int(width))
