# Each command does all set-up on a fresh clone (needs python3 and make):
#   make bench   create .venv, install, run the default benchmark suite into results/
#   make test    create .venv, install, run the tests
#   make results run the default suite afresh into results/ and copy what the README shows (report.md,
#                run.json, figures/*.png) into docs/results/. Try the mechanics quickly with
#                `make results SUITE=quick RESULTS_DIR=/tmp/r DOCS_DIR=/tmp/d`; RESUME=1 keeps the finished
#                runs of an interrupted `make results` (only when the code has not changed since).
#   make fuzz    property-based fuzzing of the command line (10,000 generated inputs; prints the counts)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=
SUITE       ?= default
RESULTS_DIR ?= results
DOCS_DIR    ?= docs/results
RESUME      ?=

FUZZ_EXAMPLES ?= 10000

.PHONY: bench test results fuzz install clean

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

results: $(STAMP)
	@test -n "$(RESULTS_DIR)" && test -n "$(DOCS_DIR)" || { echo "RESULTS_DIR and DOCS_DIR must be set" >&2; exit 2; }
	$(if $(RESUME),,rm -rf "$(RESULTS_DIR)")
	$(VENV)/bin/analogdiff bench --suite "$(SUITE)" --out "$(RESULTS_DIR)" $(ARGS)
	rm -rf "$(DOCS_DIR)/figures"
	mkdir -p "$(DOCS_DIR)/figures"
	cp "$(RESULTS_DIR)/report.md" "$(RESULTS_DIR)/run.json" "$(DOCS_DIR)/"
	cp "$(RESULTS_DIR)"/figures/*.png "$(DOCS_DIR)/figures/"
fuzz: $(STAMP)
	$(PY) tests/fuzz_cli.py --examples $(FUZZ_EXAMPLES)

clean:
	rm -rf $(VENV) results build *.egg-info
