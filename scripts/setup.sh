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
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python - <<'PY'
import torch
assert not torch.version.cuda, f'a CUDA torch ({torch.__version__}) was installed; expected the CPU build'
import rclpy, mujoco, rosbags, mcap, onnxruntime  # noqa: F401
print(f'setup: ok (torch {torch.__version__}, mujoco {mujoco.__version__})')
PY
