#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: system EGL libraries for MuJoCo, .venv, Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import ctypes; ctypes.CDLL('libEGL.so.1'); ctypes.CDLL('libGL.so.1')" 2>/dev/null; then
  echo "setup: installing EGL/OpenGL libraries for MuJoCo's headless renderer"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq libegl1 libgl1 libgles2 libegl-mesa0 libgl1-mesa-dri >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# pip's own chatter is not the user's business: notices about index locations this machine's
# pip config names but does not have, and setuptools' editable-install banner.
quiet() {
  "$@" 2> >(grep -v -e "is ignored: it is neither a file nor a directory" >&2)
}
quiet .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
quiet .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
PYTHONWARNINGS=ignore quiet .venv/bin/python -m pip install -q --disable-pip-version-check \
  --no-deps -e .
.venv/bin/python - <<'PY'
import torch
assert not torch.version.cuda, f'a CUDA torch ({torch.__version__}) was installed; expected the CPU build'
import rclpy, mujoco, rosbags, mcap, onnxruntime  # noqa: F401
print(f'setup: ok (torch {torch.__version__}, mujoco {mujoco.__version__})')
PY
