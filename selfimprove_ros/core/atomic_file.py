"""Files a reader sees whole or not at all: write a temporary sibling, fsync, rename, fsync dir.

One scheme for every file a crash must not leave half-written (episode.yaml, metadata.yaml,
labels, checkpoints, run state): the temporary file is unique and hidden in the same
directory, removed if writing fails, and renamed over the target only once on disk.
"""

import contextlib
import json
import os
import tempfile


def fsync_dir(path):
    """Flush a directory entry (new or renamed files) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, binary: bool = False):
    """Yield a stream into a temporary sibling of `path`; on success it replaces `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp',
                                   dir=folder)
    try:
        with os.fdopen(handle, 'wb' if binary else 'w',
                       **({} if binary else {'encoding': 'utf-8'})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    fsync_dir(folder)


def write_json_atomic(path, data):
    """Write `data` as indented JSON to `path`, atomically."""
    with atomic_write(path) as stream:
        json.dump(data, stream, indent=1)


def write_yaml_atomic(path, data):
    """Write `data` as block-style YAML (keys in order) to `path`, atomically."""
    import yaml
    with atomic_write(path) as stream:
        yaml.safe_dump(data, stream, default_flow_style=False, sort_keys=False)
