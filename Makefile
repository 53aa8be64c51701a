# The README's two commands: `make run` and `make test`. Both create the virtual environment if it
# is missing and install rnn-core with the frameworks of one install profile, at the pins of
# constraints/$(PROFILE).txt:
#   all      Python 3.11:    NumPy 1.23, PyTorch, TensorFlow, MXNet and JAX;
#   current  Python 3.12-3.14: NumPy 2, PyTorch, TensorFlow and JAX (MXNet 1.9.1 needs NumPy < 1.24;
#            TensorFlow 2.21 has no wheels for Python 3.14, so 3.14 has no TensorFlow; PyTorch 2.13
#            none for 3.15).
# The profile follows the Python found; `make test PROFILE=current PYTHON=python3.12` asks for one.
# The notebook tools (the `notebooks` extra) come with both; `make notebooks` writes
# notebooks/*.ipynb from their jupytext .py files; `make docs` writes docs/side-by-side.md from backends/.
PYTHON ?= python3
VENV ?= .venv
BACKEND ?= numpy
ARGS ?=
PY := $(VENV)/bin/python
# The interpreter that decides the profile: the environment's own once it exists.
DECIDER := $(if $(wildcard $(PY)),$(PY),$(PYTHON))
# rnn_core/profiles.py says which profile a Python takes, and what the profile leaves out there; it
# needs only the standard library, so it runs before anything is installed (-I: nothing else).
PROFILES := $(DECIDER) -I rnn_core/profiles.py
PROFILE ?= $(shell $(PROFILES) choose 2>/dev/null)
ifeq ($(PROFILE),)
$(error PYTHON=$(PYTHON) does not run: give PYTHON= a Python interpreter that exists, for example PYTHON=python3)
endif
ifeq ($(wildcard constraints/$(PROFILE).txt),)
$(error $(shell $(PROFILES) check '$(PROFILE)' 2>&1))
endif

.PHONY: run test install profile notebooks docs clean

$(VENV)/.installed-$(PROFILE): pyproject.toml constraints/$(PROFILE).txt
	@$(PROFILES) check $(PROFILE)
	@$(MAKE) --no-print-directory profile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install --only-binary=:all: -c constraints/$(PROFILE).txt -e '.[$(PROFILE),test,notebooks]'
	@# PyPI's Linux torch (the CUDA build) brings Triton, whose library crashes the process when
	@# torch first imports it (torch.optim, deterministic mode) after JAX or TensorFlow were
	@# loaded; torch runs without it (Triton only compiles GPU kernels for torch.compile).
	if [ "$(PROFILE)" = current ]; then $(PY) -m pip uninstall -y triton; fi
	rm -f $(VENV)/.installed-*
	touch $@

profile:
	@echo "install profile '$(PROFILE)' for $$($(DECIDER) -c 'import platform; print("Python", platform.python_version())') ($(VENV))"
	@$(PROFILES) notes $(PROFILE)

install: $(VENV)/.installed-$(PROFILE)

run: $(VENV)/.installed-$(PROFILE)
	RNN_CORE_PROFILE=$(PROFILE) $(PY) -m rnn_core.run --backend $(BACKEND) $(ARGS)

test: $(VENV)/.installed-$(PROFILE)
	RNN_CORE_PROFILE=$(PROFILE) $(PY) -m pytest $(ARGS)

notebooks: $(VENV)/.installed-$(PROFILE)
	$(PY) -m jupytext --to ipynb --update notebooks/*.py   # --update keeps the cells' ids

docs: $(VENV)/.installed-$(PROFILE)
	$(PY) docs/scripts/side_by_side.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache build dist
