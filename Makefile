# The README's two commands are `make demo` and `make test`; both build venv/ first.
PYTHON ?= python3
VENV   := venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STACK  ?= dev

.PHONY: help venv check policy test test-guardrails test-unit test-e2e demo serve drill bench bench-cold bench-cost readme-cost soak clean

help:
	@echo "make check   - ruff and mypy (config in pyproject.toml); every noqa / type: ignore must name its rule and say why"
	@echo "make policy  - the CrossGuard pack (policy/) against the mock-run graph of STACK=dev|prod, offline"
	@echo "make test    - unit tests (Pulumi mocks, handlers on moto) and local-cloud end-to-end tests"
	@echo "make test-guardrails - the policy pack's and the OpenAPI contract's tests (schemathesis); CI runs both"
	@echo "make demo    - local cloud + simulated fleet, prints a report (exit 0 only if nothing was lost)"
	@echo "make serve   - run the local cloud in the foreground until Ctrl-C (STACK=dev|prod)"
	@echo "make drill   - drive every alarm to ALARM and back on the local cloud (STACK=dev|prod)"
	@echo "make bench   - throughput and start-up benchmark of the local pipeline"
	@echo "make bench-cold - what each Lambda handler's cold start spends on imports"
	@echo "make bench-cost - \$$ per million readings at the reference workload, dev and prod (cost meter)"
	@echo "make readme-cost - regenerate README's cost section from the planner"
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

# What `make check` lints and type-checks. handlers/ is checked on its own: it is the Lambda archive
# root, so its shells import `telemetry.*` as a top-level package (pyproject.toml: mypy_path).
CHECK_PATHS := __main__.py components settings handlers admin fleet localcloud policy
HANDLER_FILES := handlers/ingest.py handlers/authorizer.py handlers/processor.py handlers/telemetry
# A suppression without a reason: `# noqa` not followed by `: CODES - reason`, or `# type: ignore`
# not followed by `[codes]  # reason`.
BARE_SUPPRESSION := \# noqa($$|[^:]|: [A-Z0-9, ]+$$)|\# type: ignore($$|[^[]|\[[a-z, -]+\]$$)

check: $(STAMP)
	$(PY) -m ruff check --quiet $(CHECK_PATHS)
	$(PY) -m mypy $(HANDLER_FILES)
	$(PY) -m mypy $(filter-out handlers,$(CHECK_PATHS))
	@if grep -rnE '$(BARE_SUPPRESSION)' --include='*.py' $(CHECK_PATHS) tests benchmarks; then \
		echo "make check: the suppressions above need their rule and a reason"; exit 1; fi

policy: $(STAMP)
	$(PY) -m policy.check --stack $(STACK)

# The guard-rail tests (policy pack, OpenAPI contract fuzzed by schemathesis: about 45 s) run as
# their own target so that `make test` stays within its 5-minute budget; .ci/run runs both.
GUARDRAIL_TESTS := tests/policy tests/contract

test: $(STAMP)
	$(PY) -m pytest -q tests $(GUARDRAIL_TESTS:%=--ignore=%)

test-guardrails: $(STAMP)
	$(PY) -m pytest -q $(GUARDRAIL_TESTS)

test-unit: $(STAMP)
	$(PY) -m pytest -q tests -m "not e2e"

test-e2e: $(STAMP)
	$(PY) -m pytest -q tests -m e2e

demo: $(STAMP)
	$(PY) -m fleet demo --stack $(STACK)

serve: $(STAMP)
	$(PY) -m localcloud serve --stack $(STACK)

drill: $(STAMP)
	$(PY) -m localcloud drill --stack $(STACK)

bench: $(STAMP)
	$(PY) -m benchmarks.pipeline

bench-cold: $(STAMP)
	$(PY) -m benchmarks.cold_import

bench-cost: $(STAMP)
	$(PY) -m benchmarks.cost

readme-cost: $(STAMP)
	$(PY) -m planner readme --write

soak: $(STAMP)
	$(PY) -m benchmarks.transient_faults

clean:
	rm -rf $(VENV) .localcloud .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
