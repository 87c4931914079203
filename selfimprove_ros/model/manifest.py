"""The model directory contract: `manifest.json` beside `policy.onnx` and/or `reward.onnx`.

A model directory is published whole (written under a temporary name, then renamed), and the
manifest names every file with its sha256, so a reader never runs half a model or a file that
was replaced after export. `manifest.sha256` seals the manifest itself (and through it every
file): a manifest edited afterwards (its cameras, its files) is refused too. A station that
wants to know *who* made a model also signs it: `manifest.sig` is an HMAC-SHA256 of the
manifest with the station's key, which only the trainer holds. `verify_model_dir` is what the
robot runs before loading anything.
"""

import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time

FORMAT = 'selfimprove_ros/model/1'
MANIFEST = 'manifest.json'
SEAL = 'manifest.sha256'
SIGNATURE = 'manifest.sig'


def sha256_of(path: str) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: str) -> dict:
    """Read and sanity-check a model directory's manifest (no hashing)."""
    path = os.path.join(model_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{model_dir} has no {MANIFEST}; export the model with '
                                '`selfimprove export` (a model directory is not a bare .onnx)')
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path} is not valid JSON ({error}); re-export the model') from error
    if manifest.get('format') != FORMAT:
        raise ValueError(f'{path} has format {manifest.get("format")!r}, expected {FORMAT!r}; '
                         'it was written by another tool or version')
    for key in ('version', 'files', 'codec'):
        if key not in manifest:
            raise ValueError(f'{path} lacks {key!r}; re-export the model')
    return manifest


def verify_model_dir(model_dir: str, required=('policy.onnx',), key: bytes = b'') -> dict:
    """Check the seal, the signature (with `key`), `required` files and every file's sha256.

    Return the manifest; raise ValueError naming the file and both hashes on any mismatch.
    """
    manifest = read_manifest(model_dir)
    check_seal(model_dir)
    if key:
        check_signature(model_dir, key)
    missing = [name for name in required if name not in manifest['files']]
    if missing:
        raise ValueError(f'model {manifest["version"]} in {model_dir} has no {missing} '
                         f'(it has {sorted(manifest["files"])})')
    for name, entry in manifest['files'].items():
        path = os.path.join(model_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path} is listed in the manifest but missing')
        actual = sha256_of(path)
        if actual != entry['sha256']:
            raise ValueError(f'{path}: sha256 {actual[:16]}... does not match the manifest\'s '
                             f'{entry["sha256"][:16]}...; the file is corrupt or was replaced '
                             'after export; re-export or copy the directory again')
    return manifest


def manifest_bytes(model_dir: str) -> bytes:
    """Return the manifest file's bytes, exactly as sealed and signed."""
    with open(os.path.join(model_dir, MANIFEST), 'rb') as handle:
        return handle.read()


def seal_model_dir(model_dir: str):
    """Write manifest.sha256: the digest over the manifest, and so over every file it names."""
    digest = hashlib.sha256(manifest_bytes(model_dir)).hexdigest()
    with open(os.path.join(model_dir, SEAL), 'w') as handle:
        handle.write(digest + '\n')


def sign_model_dir(model_dir: str, key: bytes):
    """Write manifest.sig: HMAC-SHA256 of the manifest with the station's `key`."""
    if not key:
        raise ValueError('an empty key signs nothing; give the station key file\'s bytes')
    signature = hmac.new(key, manifest_bytes(model_dir), hashlib.sha256).hexdigest()
    with open(os.path.join(model_dir, SIGNATURE), 'w') as handle:
        handle.write(signature + '\n')


def read_key(path: str) -> bytes:
    """Return a station key file's bytes; refuse a missing or empty one by name."""
    try:
        with open(path, 'rb') as handle:
            key = handle.read().strip()
    except OSError as error:
        raise ValueError(f'station key {path} cannot be read ({error.strerror}); create one with '
                         '`head -c 32 /dev/urandom | base64 > KEY` and share it with the trainer '
                         'only') from error
    if not key:
        raise ValueError(f'station key {path} is empty')
    return key


def check_seal(model_dir: str):
    """Raise ValueError unless manifest.sha256 matches the manifest."""
    path = os.path.join(model_dir, SEAL)
    if not os.path.isfile(path):
        raise ValueError(f'{model_dir} has no {SEAL}: its manifest is not sealed (exported by an '
                         'older version, or copied without it); re-export the model')
    with open(path) as handle:
        sealed = handle.read().strip()
    actual = hashlib.sha256(manifest_bytes(model_dir)).hexdigest()
    if actual != sealed:
        raise ValueError(f'{os.path.join(model_dir, MANIFEST)} changed after export (sha256 '
                         f'{actual[:16]}..., sealed {sealed[:16]}...): a changed manifest could '
                         'run the model on other cameras or files; re-export the model')


def check_signature(model_dir: str, key: bytes):
    """Raise ValueError unless manifest.sig is the manifest's HMAC with `key`."""
    path = os.path.join(model_dir, SIGNATURE)
    if not os.path.isfile(path):
        raise ValueError(f'{model_dir} is not signed ({SIGNATURE} missing) and this robot only '
                         'loads models signed with its station key; sign it where it was '
                         'trained (`selfimprove export --sign-key`, trainer_node model_key_file)')
    with open(path) as handle:
        signature = handle.read().strip()
    expected = hmac.new(key, manifest_bytes(model_dir), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise ValueError(f'{path} does not match this station\'s key: the model was signed by '
                         'someone else or changed since; it is not loaded')


def publish_model_dir(files: dict, manifest: dict, out_dir: str) -> str:
    """Write `files` {name: source path} and the manifest into `out_dir` atomically.

    Everything goes into a temporary sibling directory first, which is renamed into place only
    once complete; `out_dir` must not exist yet (versions are immutable).
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir):
        raise FileExistsError(f'{out_dir} exists; model directories are immutable, choose a new '
                              'one (or delete it first)')
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(out_dir)}.', dir=parent)
    try:
        manifest = dict(manifest, format=FORMAT, files={},
                        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
        for name, source in files.items():
            target = os.path.join(staging, name)
            shutil.copyfile(source, target)
            manifest['files'][name] = {'sha256': sha256_of(target),
                                       'bytes': os.path.getsize(target)}
        with open(os.path.join(staging, MANIFEST), 'w') as handle:
            json.dump(manifest, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        seal_model_dir(staging)
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
