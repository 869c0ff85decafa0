# Two commands do all set-up on a fresh clone (needs python3 and make):
#   make bench   create .venv, install, run the default benchmark suite into results/
#   make test    create .venv, install, run the tests
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: bench test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/analogdiff bench $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

clean:
	rm -rf $(VENV) results build *.egg-info
