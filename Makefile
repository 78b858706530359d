SHELL := /bin/bash
# Entry points for the blueprint. Every target creates or updates the virtual
# environments it needs, so each one works on a fresh clone.

PYTHON ?= python3
VENV := .venv
POLICY_VENV := policies/.venv
PY := $(VENV)/bin/python
POLICY_PY := $(POLICY_VENV)/bin/python

STACK ?= dev
INPUT ?=
OUTPUT ?= out/run
TRIAGE ?= local
LABELS ?=
FEATURES ?=
FORMAT ?= table
PREVIEW_JSON ?=
STACK_EXPORT ?=
ENVIRONMENT ?=
POLICY_CONFIG ?=

# $(call quote,TEXT): TEXT as one single-quoted shell word, so that an error
# message shows a variable's value as typed, quotes and '$' included.
quote = '$(subst ','\'',$(1))'

.PHONY: help venv demo run test lint typecheck unit gate plan bench clean

help:
	@echo "make demo    run the pipeline locally on the synthetic stream, then plan and gate the dev stack"
	@echo "make test    lint, type check, unit tests, and the policy gate on both stacks"
	@echo "make run     INPUT=<file|dir> OUTPUT=<dir> TRIAGE=<local|none> [LABELS=<windows.json>]"
	@echo "             [FEATURES=<file>]: JSON Lines rows {entity_id, ...} joined to each event's context"
	@echo "make plan    STACK=<dev|prod>: resources that 'pulumi up' would create (mocked, no cloud)"
	@echo "make gate    STACK=<dev|prod> [FORMAT=json]: the mocked stack against the policy pack"
	@echo "             PREVIEW_JSON=<file> | STACK_EXPORT=<file>: that file instead; STACK=<dev|prod> or"
	@echo "             ENVIRONMENT=<dev|prod> chooses the policy config (default: the stack in the URNs)"
	@echo "             POLICY_CONFIG=<file>: that policy config instead of policies/config/<environment>.json"
	@echo "make bench   throughput, triage and memory figures"

venv: $(VENV)/.installed $(POLICY_VENV)/.installed

# llama-cpp-python has no binary wheel on PyPI. The first install compiles it
# (5 to 10 minutes on two cores) and pip caches the wheel, so later installs
# take seconds. The build log is shown so the wait is visible.
$(VENV)/.installed: requirements-dev.txt infra/requirements.txt pipeline/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	@if $(PY) -m pip cache list 'llama_cpp_python-0.3.36-*' 2>/dev/null | grep -q llama_cpp_python; then \
	  echo "llama-cpp-python: reusing the wheel in pip's cache"; \
	  $(PY) -m pip install --quiet llama-cpp-python==0.3.36; \
	else \
	  echo "llama-cpp-python: building from source, 5 to 10 minutes on 2 cores (no binary wheel exists on PyPI); pip caches the wheel for later runs"; \
	  $(PY) -m pip install --verbose llama-cpp-python==0.3.36 2>&1 | sed -un \
	    -e '/^ *\[[0-9]*\/[0-9]*\]/{s/^ *\(\[[0-9]*\/[0-9]*\]\).* -o \([^ ]*\).*/  \1 \2/p;t' \
	    -e 's/^ *\(\[[0-9]*\/[0-9]*\]\) \([^ ]*\).*/  \1 \2/p;}' \
	    -e '/^Successfully installed.*llama-cpp-python\|ERROR\|error:/p'; \
	  test $${PIPESTATUS[0]} -eq 0; \
	fi
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(POLICY_VENV)/.installed: policies/requirements.txt
	@test -x $(POLICY_PY) || $(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_PY) -m pip install --quiet --upgrade pip==25.3
	$(POLICY_PY) -m pip install --quiet -r policies/requirements.txt mypy==2.4.1 pytest==9.2.0
	@touch $@

demo: venv
	$(PY) -m pipeline.demo --output out/demo
	$(PY) -m infra.plan --stack dev
	$(PY) -m policies.gate --stack dev

# The local runner has only the triage handlers that need no cloud. vertex calls
# the Vertex AI endpoint, which only the deployed Dataflow job reaches.
RUN_TRIAGE_VALUES := local none
RUN_TRIAGE_VALID = $(and $(filter 1,$(words $(TRIAGE))),$(filter $(RUN_TRIAGE_VALUES),$(TRIAGE)))
RUN_TRIAGE_ERROR = error: $(if $(strip $(TRIAGE)),TRIAGE=$(TRIAGE) is invalid,TRIAGE is empty); \
  expected local (the embedded Gemma 3 270M model) or none (no triage). TRIAGE=vertex runs \
  only in the Dataflow job on Google Cloud, not in make run

run: venv
	@test -n "$(INPUT)" || { echo "error: INPUT is missing; pass INPUT=<JSON Lines file, NAB CSV file or directory>"; exit 2; }
	@$(if $(RUN_TRIAGE_VALID),,printf '%s\n' $(call quote,$(RUN_TRIAGE_ERROR)) >&2; exit 2)
	$(PY) -m pipeline.run_local --input "$(INPUT)" --output "$(OUTPUT)" --triage "$(strip $(TRIAGE))" \
	  $(if $(LABELS),--labels "$(LABELS)") $(if $(FEATURES),--features "$(FEATURES)")

test: lint typecheck unit gate-stacks

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy infra pipeline policies benchmarks tests
	$(POLICY_VENV)/bin/mypy --config-file pyproject.toml policies/pack.py policies/__main__.py

unit: venv
	$(VENV)/bin/pytest
	$(POLICY_VENV)/bin/pytest -o addopts='-ra --strict-markers' tests/policy_pack

gate-stacks: venv
	$(PY) -m policies.gate --stack dev
	$(PY) -m policies.gate --stack prod

# With PREVIEW_JSON or STACK_EXPORT, the file is checked instead of the mocked
# stack. STACK then names the stack the file comes from, so it chooses the policy
# config like ENVIRONMENT does. STACK counts only when set on the command line or
# in the environment, because its default (dev) must not override the stack that
# the gate reads from the file's URNs. Passing both files reaches the gate, which
# rejects the combination. The recipe is silent so that FORMAT=json leaves only
# JSON on stdout once the environments exist.
GATE_FILE = $(strip $(PREVIEW_JSON)$(STACK_EXPORT))
GATE_FILE_VARIABLE = $(if $(PREVIEW_JSON),PREVIEW_JSON,STACK_EXPORT)
GATE_STACK = $(if $(filter command environment,$(origin STACK)),$(STACK))
GATE_ENVIRONMENT = $(or $(ENVIRONMENT),$(if $(GATE_FILE),$(GATE_STACK)))
GATE_CONFLICT = $(and $(GATE_FILE),$(GATE_STACK),$(ENVIRONMENT),$(filter-out $(ENVIRONMENT),$(GATE_STACK)))
GATE_CONFLICT_ERROR = error: STACK=$(STACK) and ENVIRONMENT=$(ENVIRONMENT) choose different \
  policy configs for $(GATE_FILE_VARIABLE)=$($(GATE_FILE_VARIABLE)); pass only one of them, or the same value to both
STACK_EMPTY_ERROR = error: STACK is empty; pass STACK=dev or STACK=prod

gate: venv
	@$(if $(GATE_FILE)$(strip $(STACK)),,echo "$(STACK_EMPTY_ERROR), or PREVIEW_JSON=<file> or STACK_EXPORT=<file> to check a file" >&2; exit 2)
	@$(if $(GATE_CONFLICT),echo "$(GATE_CONFLICT_ERROR)" >&2; exit 2)
	@$(PY) -m policies.gate --format "$(FORMAT)" \
	  $(if $(PREVIEW_JSON),--preview-json "$(PREVIEW_JSON)") \
	  $(if $(STACK_EXPORT),--stack-export "$(STACK_EXPORT)") \
	  $(if $(GATE_FILE),,--stack "$(STACK)") \
	  $(if $(GATE_ENVIRONMENT),--environment "$(GATE_ENVIRONMENT)") \
	  $(if $(POLICY_CONFIG),--policy-config "$(POLICY_CONFIG)")

plan: venv
	@$(if $(strip $(STACK)),,echo "$(STACK_EMPTY_ERROR)" >&2; exit 2)
	$(PY) -m infra.plan --stack "$(STACK)"

bench: venv
	$(PY) -m benchmarks.pipeline_bench

clean:
	rm -rf out .mypy_cache .ruff_cache .pytest_cache
