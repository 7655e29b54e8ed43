# polystep-repro: two commands do everything on a fresh machine with Python 3.11 and make.
#   make reproduce   regenerate every registered figure/table at the default cpu scale + paper/REPORT.md
#                    (cells on JOBS=2 worker processes; benchmarks alone afterwards)
#   make test        run the test-suite (one pytest-xdist worker per core; PYTEST_ARGS overrides)
#   make data        fetch MNIST, Fashion-MNIST and ETTh1 into the data cache (verified; see README "Data")
# Both create .venv and install the pinned environment (requirements/lock.txt) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
SCALE  ?= cpu
DEVICE ?= auto
JOBS   ?= 2
PYTEST_ARGS ?= -n auto
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: reproduce test env data report clean

$(STAMP): requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

env: $(STAMP)

data: $(STAMP)
	$(BIN)/polystep-repro data fetch all

reproduce: $(STAMP) data
	$(BIN)/polystep-repro all --scale $(SCALE) --device $(DEVICE) --jobs $(JOBS)

report: $(STAMP)
	$(BIN)/polystep-repro report

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) results .pytest_cache
