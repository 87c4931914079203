"""Episode bags as tests need them: here, what a crash leaves of a live writer's bag."""

import os
import shutil


def crashed_copy(writer, dest, size):
    """Copy a live writer's bag, cut to `size` bytes, to `dest`: what a crash leaves behind.

    Return `dest` as a string.
    """
    os.makedirs(dest)
    shutil.copy(os.path.join(writer.path, 'episode.yaml'), dest)
    with open(os.path.join(writer.path, writer.file_name), 'rb') as src:
        data = src.read()[:size]
    with open(os.path.join(dest, writer.file_name), 'wb') as out:
        out.write(data)
    return str(dest)
