"""The files of a LeRobot export besides its videos: data parquet, episodes, tasks, stats, info."""

import json
import os

import numpy as np

from selfimprove_ros.data.lerobot_format import (ACTION, ACTION_MISSING, ACTION_TOKENS,
                                                 CHUNKS_SIZE, CODEBASE_VERSION, CODECS,
                                                 DATA_FILES_SIZE_MB, DATA_PATH, DEFAULT_FEATURES,
                                                 EPISODES_PATH, EPISODE_KEY, IMAGE_PREFIX,
                                                 INFO_PATH, POLICY_VERSION, REWARD, SIM_SUCCESS,
                                                 STATE, STATS_PATH, STEPS_TO_GO, TASKS_PATH,
                                                 TICK_NS, VIDEO_FILES_SIZE_MB, VIDEO_PATH)
from selfimprove_ros.data.lerobot_stats import add_episode_stats, dataset_stats, jsonable


def info_features(cameras, height, width, codec, fps, token_width):
    """Return the info.json features of an export."""
    from selfimprove_ros.core.joints import JOINT_NAMES
    features = {
        STATE: {'dtype': 'float32', 'shape': [len(JOINT_NAMES)], 'names': list(JOINT_NAMES)},
        ACTION: {'dtype': 'float32', 'shape': [len(JOINT_NAMES)], 'names': list(JOINT_NAMES)},
    }
    for cam in cameras:
        features[IMAGE_PREFIX + cam] = {
            'dtype': 'video', 'shape': [height, width, 3],
            'names': ['height', 'width', 'channels'],
            'info': {'video.height': height, 'video.width': width,
                     'video.codec': CODECS[codec], 'video.pix_fmt': 'yuv420p',
                     'video.is_depth_map': False, 'video.fps': fps, 'video.channels': 3,
                     'has_audio': False}}
    features.update({
        TICK_NS: {'dtype': 'int64', 'shape': [1], 'names': None},
        STEPS_TO_GO: {'dtype': 'float32', 'shape': [1], 'names': None},
        REWARD: {'dtype': 'float32', 'shape': [1], 'names': None},
        POLICY_VERSION: {'dtype': 'string', 'shape': [1], 'names': None},
        SIM_SUCCESS: {'dtype': 'bool', 'shape': [1], 'names': None},
        ACTION_MISSING: {'dtype': 'bool', 'shape': [1], 'names': None},
    })
    if token_width:
        features[ACTION_TOKENS] = {'dtype': 'int64', 'shape': [token_width], 'names': None}
    features.update(json.loads(json.dumps(DEFAULT_FEATURES)))
    return features


def _arrow_type(feature):
    import pyarrow as pa
    scalar = {'float32': pa.float32(), 'float64': pa.float64(), 'int64': pa.int64(),
              'bool': pa.bool_(), 'string': pa.string()}[feature['dtype']]
    if list(feature['shape']) == [1]:
        return scalar
    # Fixed-size lists: what `datasets` makes of LeRobot's Sequence(length=n) features.
    return pa.list_(scalar, feature['shape'][0])


def _frames_table(frames: dict, features: dict):
    import pyarrow as pa
    columns, fields, hf_features = [], [], {}
    for key, feature in features.items():
        if feature['dtype'] == 'video':
            continue
        values = frames[key]
        arrow = _arrow_type(feature)
        if isinstance(arrow, pa.FixedSizeListType):
            flat = np.ascontiguousarray(values, dtype=feature['dtype']).reshape(-1)
            array = pa.FixedSizeListArray.from_arrays(pa.array(flat, arrow.value_type),
                                                      feature['shape'][0])
        else:
            array = pa.array(values if feature['dtype'] == 'string'
                             else np.asarray(values, dtype=feature['dtype']), arrow)
        columns.append(array)
        fields.append(pa.field(key, arrow))
        hf_features[key] = {'dtype': feature['dtype'], '_type': 'Value'}
        if isinstance(arrow, pa.FixedSizeListType):
            hf_features[key] = {'feature': hf_features[key], 'length': feature['shape'][0],
                                '_type': 'List'}
    # The `datasets` library's own record of the features, as LeRobot's writer leaves it.
    meta = {b'huggingface': json.dumps({'info': {'features': hf_features}}).encode()}
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=meta))


def write_tasks(path, tasks):
    """Write meta/tasks.parquet as pandas would: task_index column, index 'task'."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({'task_index': pa.array(range(len(tasks)), pa.int64()),
                      'task': pa.array(list(tasks), pa.string())})
    # LeRobot reads this with pandas and looks a task up as `tasks.iloc[i].name`, the index;
    # pandas restores that index from this schema metadata.
    pandas_meta = {
        'index_columns': ['task'],
        'column_indexes': [{'name': None, 'field_name': None, 'pandas_type': 'unicode',
                            'numpy_type': 'object', 'metadata': {'encoding': 'UTF-8'}}],
        'columns': [{'name': 'task_index', 'field_name': 'task_index', 'pandas_type': 'int64',
                     'numpy_type': 'int64', 'metadata': None},
                    {'name': 'task', 'field_name': 'task', 'pandas_type': 'unicode',
                     'numpy_type': 'object', 'metadata': None}],
        'creator': {'library': 'pyarrow', 'version': pa.__version__},
        'pandas_version': '2.2.3'}
    table = table.replace_schema_metadata({b'pandas': json.dumps(pandas_meta).encode()})
    pq.write_table(table, path)


def _write_data(root, rows, features):
    """Write the data parquet files: one row group per episode of `rows` (chunk, file, frames)."""
    import pyarrow.parquet as pq
    writers = {}
    try:
        for chunk, file, frames in rows:
            table = _frames_table(frames, features)
            if (chunk, file) not in writers:
                path = os.path.join(root, DATA_PATH.format(chunk_index=chunk, file_index=file))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                writers[(chunk, file)] = pq.ParquetWriter(path, table.schema,
                                                          compression='snappy')
            writers[(chunk, file)].write_table(table)  # one row group per episode
    finally:
        for writer in writers.values():
            writer.close()


def _write_episodes(root, episodes):
    """Write the episodes metadata, one row per episode, into its single file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    # Typed explicitly: a column that is None in every episode would otherwise be of type null.
    types = {EPISODE_KEY + name: pa.int64() for name in (
        'seed', 'success_tick', 'start_time_ns', 'end_time_ns', 'action_tokens_width')}
    types.update({EPISODE_KEY + name: pa.bool_() for name in ('sim_success',
                                                              'verdict_success')})
    columns = {key: pa.array([row[key] for row in episodes], types.get(key))
               for key in episodes[0]}
    episodes_path = os.path.join(root, EPISODES_PATH.format(chunk_index=0, file_index=0))
    os.makedirs(os.path.dirname(episodes_path), exist_ok=True)
    pq.write_table(pa.table(columns), episodes_path)


def write_dataset_files(export, features, fps, robot_type):
    """Write the data parquet files, the episodes metadata, tasks, stats and info.

    `export` holds what was gathered: root, cameras, episodes (metadata rows), rows
    (chunk, file, frames), histograms {camera: level counts} and tasks {text: index}.
    """
    root = export.root
    _write_data(root, export.rows, features)
    numeric = [key for key, ft in features.items() if ft['dtype'] not in ('video', 'string')]
    add_episode_stats(export.episodes, export.rows, numeric)
    total = sum(row['length'] for row in export.episodes)
    stats = dataset_stats(export.rows, export.histograms, numeric, total)
    _write_episodes(root, export.episodes)
    write_tasks(os.path.join(root, TASKS_PATH), export.tasks)
    with open(os.path.join(root, STATS_PATH), 'w', encoding='utf-8') as stream:
        json.dump(jsonable(stats), stream, indent=2)
    info = {
        'codebase_version': CODEBASE_VERSION, 'robot_type': robot_type,
        'total_episodes': len(export.episodes), 'total_frames': total,
        'total_tasks': len(export.tasks), 'chunks_size': CHUNKS_SIZE,
        'data_files_size_in_mb': DATA_FILES_SIZE_MB,
        'video_files_size_in_mb': VIDEO_FILES_SIZE_MB, 'fps': fps,
        'splits': {'train': f'0:{len(export.episodes)}'},
        'data_path': DATA_PATH, 'video_path': VIDEO_PATH if export.cameras else None,
        'features': features}
    with open(os.path.join(root, INFO_PATH), 'w', encoding='utf-8') as stream:
        json.dump(info, stream, indent=4)
