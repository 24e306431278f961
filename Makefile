# The README's two commands are `make demo` and `make test`; both build venv/ first.
PYTHON ?= python3
VENV   := venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STACK  ?= dev

.PHONY: help venv test test-unit test-e2e demo serve bench bench-cold soak clean

help:
	@echo "make test    - unit tests (Pulumi mocks, handlers on moto) and local-cloud end-to-end tests"
	@echo "make demo    - local cloud + simulated fleet, prints a report (exit 0 only if nothing was lost)"
	@echo "make serve   - run the local cloud in the foreground until Ctrl-C (STACK=dev|prod)"
	@echo "make bench   - throughput and start-up benchmark of the local pipeline"
	@echo "make bench-cold - what each Lambda handler's cold start spends on imports"
	@echo "make soak    - a fleet of 50,000+ readings under transient DynamoDB/Kinesis faults strands nothing"
	@echo "make clean   - remove venv/, .localcloud/ and caches"

venv: $(STAMP)

# pip compiles bytecode on one core; compileall -j 0 uses every core (about half the install time here).
$(STAMP): requirements.txt requirements-lambda.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	$(PY) -m compileall -q -j 0 $(VENV)/lib
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

test-unit: $(STAMP)
	$(PY) -m pytest -q tests -m "not e2e"

test-e2e: $(STAMP)
	$(PY) -m pytest -q tests -m e2e

demo: $(STAMP)
	$(PY) -m fleet demo --stack $(STACK)

serve: $(STAMP)
	$(PY) -m localcloud serve --stack $(STACK)

bench: $(STAMP)
	$(PY) -m benchmarks.pipeline

bench-cold: $(STAMP)
	$(PY) -m benchmarks.cold_import

soak: $(STAMP)
	$(PY) -m benchmarks.transient_faults

clean:
	rm -rf $(VENV) .localcloud .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
