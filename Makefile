# The README's two commands: `make run` and `make test`. Both create .venv if it is missing and
# install rnn-core with every framework at the known-good pins of constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BACKEND ?= numpy
ARGS ?=
PY := $(VENV)/bin/python

.PHONY: run test clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[all,test]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m rnn_core.run --backend $(BACKEND) $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
