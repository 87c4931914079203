# The two commands that matter: `make demo` and `make test`; each sets up on its own.
VENV := .venv
STAMP := $(VENV)/.setup-done
export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-fast lint bench models clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/selfimprove demo $(ARGS)

test: setup
	$(VENV)/bin/python -m pytest -q test $(ARGS)

# The logic alone, without the tests that start ROS nodes (seconds instead of minutes).
test-fast: setup
	$(VENV)/bin/python -m pytest -q test -m "not graph" $(ARGS)

lint: setup
	$(VENV)/bin/python -m pytest -q test/test_lint.py

# Rebuild the shipped Stage-1 models (models/$(TASK)/) from scripted demonstrations, and audit
# their success rule on 100 whole rollouts (~30 min; `make models TASK=insertion`, whose recipe
# is 400 demonstrations and two 15,000-step SFT runs: about 2.5 hours).
TASK ?= transfer_cube
models: setup
	$(VENV)/bin/selfimprove models --task $(TASK) $(ARGS)

bench: setup
	$(VENV)/bin/python -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) build install log
