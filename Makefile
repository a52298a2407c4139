# One entry point. `make test` installs whatever is missing, then lints and tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install install-runtime test lint unit test-shard shards demo bench clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Installs come from uv.lock (every package pinned, with hashes): CI, deploys and a fresh
# clone get the same versions. uv itself lives in .tools/uv (pinned), not in .venv, which
# `uv sync` keeps to exactly the lock. After changing dependencies in pyproject.toml, run
# `.tools/uv/bin/uv lock` and commit uv.lock; until then `--locked` refuses to install.
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
EXTRAS := --extra test --extra dev

$(UV):
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

# --compile-bytecode, as pip does: without it the first processes of a run (the CLI, the
# edge's sandboxes, Locust) each compile every module they import, and a first gate on a
# fresh clone measured that instead of the edge (seen: 2 requests in a 3 s gate).
UV_SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --quiet --compile-bytecode --python $(PYTHON)

$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV_SYNC) $(EXTRAS)
	touch $(STAMP)

# The local environment's sandboxes run the function under Lambda's runtime interface client
# with the runtime's own Python: its packages (awslambdaric, boto3) go to
# .tools/lambda-runtime/<runtime>, from hash-pinned wheels, never into the venv.
install: $(STAMP)  ## venv from uv.lock, pinned Pulumi CLI, linters, local Lambda runtime (cached after the first run)
	bash scripts/install-pulumi.sh
# The project's own modules compiled too, as --compile-bytecode does the venv's: with
# PYTHONDONTWRITEBYTECODE set (it is on these CI machines) every CLI run, edge and emulator
# would compile them from source again (~0.1 CPU-s each, thousands of processes in a run).
# Timestamped: a module edited later is compiled in memory again, never run stale.
	$(BIN)/python -m compileall -q orchestrator programs loadtests
	bash scripts/install-tools.sh
	$(BIN)/python -m orchestrator.local.runtime install

# What a deploy job needs, nothing more: the package and its runtime dependencies from the
# lock (no test or dev extras, no linter build) and the Pulumi CLI. Deploy jobs run it
# before they take AWS credentials. Without --compile-bytecode: a deploy job's gates measure
# AWS, not this machine, and its processes compile only what they import (a few seconds)
# where compiling every installed module took minutes (pulumi-aws alone has thousands).
install-runtime: $(UV)  ## runtime-only install for deploy jobs
	$(subst --compile-bytecode ,,$(UV_SYNC))
	bash scripts/install-pulumi.sh

lint: install  ## ruff and mypy
	$(BIN)/ruff check orchestrator programs loadtests tests bench scripts
	$(BIN)/ruff format --check orchestrator programs loadtests tests bench scripts
	$(BIN)/mypy

# --- Test shards: defined here only --------------------------------------------------------
# Every tests/test_*.py file is in exactly one shard (tests/test_ci.py fails otherwise, so a new
# test file cannot be left out of CI). Two places run them, both from these lists:
#  - CI (.github/workflows/ci.yml): one job per shard (or per part of one: PART=1/2), each on
#    its own runner: `make test-shard SHARD=<name> [PART=i/n]`;
#  - `make unit` (the README's test command, and .ci/run on one machine): six processes below.
# unit: pure decisions, the CLI's surface, the workflows' linters: no daemon, seconds in all.
SHARD_unit := tests/test_alias_reading.py tests/test_ci.py tests/test_compare.py tests/test_config_schema.py tests/test_contract.py \
	tests/test_exit_codes.py tests/test_formats.py tests/test_handler.py \
	tests/test_iam.py tests/test_iam_eval.py tests/test_machine.py tests/test_output.py tests/test_plan_gate.py tests/test_report.py \
	tests/test_bench_gate_errors.py tests/test_rotation.py tests/test_scaffold.py tests/test_seeded_faults.py \
	tests/test_settings.py tests/test_stack_contract.py tests/test_sequential.py tests/test_watch.py tests/test_workflows.py \
	tests/test_wedge_rules.py tests/test_fence_rules.py tests/test_uplease_rules.py tests/test_modelship.py \
	tests/test_signal_latch.py tests/test_layers.py tests/test_provider_migration.py tests/test_machine_oracle.py \
	tests/test_commands_oracle.py tests/test_machine_doc.py
# services: real processes (moto server, the Pulumi engine's local stack, pip, hooks, daemons)
# whose assertions judge outcomes, with no clock to beat but generous timeouts: they pass on a
# starved CPU, only later.
SHARD_services := tests/test_authorizer.py tests/test_backend_choice.py tests/test_daemons.py tests/test_habits.py \
	tests/test_hooks.py tests/test_local_authorizer.py tests/test_local_hygiene.py tests/test_role_migration.py \
	tests/test_local_stack.py tests/test_packaging.py tests/test_serving_program.py tests/test_capacity.py \
	tests/test_prune.py tests/test_state_backend.py tests/test_traffic_record.py tests/test_workflow_harness.py \
	tests/test_fences.py tests/test_uplease.py tests/test_alias_revisions.py tests/test_provider_migration_engine.py
# stacks: the same kind, each test on a deployed local stack (`up`, promotions through the
# CLI); a shard of its own so that `make unit` runs it as a stream beside the other blind one.
# (test_output_local's promotion must fail its gate: a starved CPU only fails it harder.)
SHARD_stacks := tests/test_cli.py tests/test_inspect.py tests/test_local_formats.py tests/test_local_gate_size.py \
	tests/test_local_prune.py tests/test_output_local.py tests/test_local_contract.py tests/test_model_delivery.py
# gates: promotions on the local environment whose gates judge latency and throughput (LOCAL_TOML's
# SLOs in tests/conftest.py, a slow green's 150 ms p95; the wheel's promotion with edgeship.toml's
# 250 ms), and the load generator's own timing.
SHARD_gates := tests/test_load_workers.py tests/test_loadrun.py \
	tests/test_local_release.py tests/test_modelpack.py tests/test_wheel.py
# recovery: promotions judged as the gates shard's are, that are stopped, killed, paused,
# resumed or raced by a second machine, with provisioned concurrency, or run by the workflows;
# the operator's paths and the no-wedge cases (aborts, rollbacks, a deposed driver).
SHARD_recovery := tests/test_local_provisioned.py tests/test_recovery.py tests/test_watch_hooks_pause.py \
	tests/test_workflow_runs.py tests/test_operator_paths.py tests/test_wedge.py
# timing: tests with a clock to beat: the local edge and its sandboxes (function timeouts, init
# deadlines), SigV4's skew, the origin rotation under load, provisioned concurrency that is
# ready 1 s after a move, an `up` that must still hold the stack's lock when the next one starts.
SHARD_timing := tests/test_edge_telemetry.py tests/test_engine.py tests/test_origin_rotation.py \
	tests/test_provisioned.py tests/test_sandbox.py tests/test_sigv4.py
# matrix: the fault matrix (55 promotions, lenient SLOs: only a fault fails them) and the
# network-fault matrix (17 promotions, docs/reliability.md "Network faults").
SHARD_matrix := tests/test_fault_matrix.py tests/test_network_faults.py
SHARDS := unit services stacks gates recovery timing matrix

# `make unit` on one machine: six processes at once. Tests that judge latency run at normal
# priority, in two streams (strict, recovery); the latency-blind ones run beside them at a low
# priority, where they take only what those leave: the matrix at nice 15 (its 8 s lease must be
# renewed every 2.7 s; as two processes, each every 2nd test), the blind shards at nice 19, as
# two processes (services, stacks), so that no single niced stream is left running alone at
# the end. The unit shard (pure: no clock, no process) runs last in the strict stream, once
# its latency tests are done: that stream ended ~8 minutes before the others, and at nice 19
# the unit shard made the blind stream the last to end (26 of a 27-minute run). All must pass. Ctrl-C stops them all (the background ones by SIGTERM: a shell's
# background jobs ignore SIGINT). The suite is CPU-bound on 2 cores (a clean run's CPU,
# sampled per process: the Pulumi CLI and engine ~20 %, the emulator ~13 %, the CLI's own
# processes ~13 %, sandboxes ~11 %, the edge ~11 %, Locust ~6 %): docs/ci.md has the figures.
STREAM_strict := gates timing unit
STREAM_recovery := recovery
STREAM_matrix := matrix
STREAM_blind := services
STREAM_stacks := stacks
STREAMS := strict recovery matrix blind stacks

# Each run keeps its results in $(RESULTS)/<name>/: junit.xml, log (a niced stream's whole
# output), failed/ (a failed test's emulator, edge and Locust logs and gate reports:
# tests/ci_plugin.py). CI uploads them when a shard fails. pytest's basetemp (its temporary
# projects, emptied by the next run of that name) is outside the checkout: a test that looks
# for edgeship.toml upwards must not find the repository's. One per checkout.
RESULTS := .edgeship/test-results
TEST_TMP := $(or $(TMPDIR),/tmp)/edgeship-tests-$(shell printf %s "$(CURDIR)" | cksum | cut -d' ' -f1)
PYTEST = $(BIN)/pytest -q -p no:cacheprovider --durations=15 --basetemp="$(TEST_TMP)/$(1)" \
	--junitxml="$(CURDIR)/$(RESULTS)/$(1)/junit.xml" --failed-artifacts="$(CURDIR)/$(RESULTS)/$(1)/failed"
STREAM_FILES = $(foreach shard,$(STREAM_$(1)),$(SHARD_$(shard)))

unit: install  ## pytest: latency-judging tests beside the latency-blind ones (niced), six processes
	@rm -rf $(foreach stream,$(STREAMS) matrix2,$(RESULTS)/$(stream))
	@mkdir -p $(foreach stream,$(STREAMS) matrix2,$(RESULTS)/$(stream)) "$(TEST_TMP)"
	@export PATH="$(CURDIR)/$(BIN):$$PATH"; \
	timed() { local name=$$1 start=$$SECONDS status; shift; "$$@"; status=$$?; \
		echo "$$name: exit $$status in $$(( SECONDS - start )) s" > $(RESULTS)/$$name/summary; return $$status; }; \
	timed recovery $(call PYTEST,recovery) $(call STREAM_FILES,recovery) > $(RESULTS)/recovery/log 2>&1 & recovery=$$!; \
	timed matrix nice -n 15 $(call PYTEST,matrix) --part=1/2 $(call STREAM_FILES,matrix) > $(RESULTS)/matrix/log 2>&1 & matrix=$$!; \
	timed matrix2 nice -n 15 $(call PYTEST,matrix2) --part=2/2 $(call STREAM_FILES,matrix) > $(RESULTS)/matrix2/log 2>&1 & matrix2=$$!; \
	timed blind nice -n 19 $(call PYTEST,blind) $(call STREAM_FILES,blind) > $(RESULTS)/blind/log 2>&1 & blind=$$!; \
	timed stacks nice -n 19 $(call PYTEST,stacks) $(call STREAM_FILES,stacks) > $(RESULTS)/stacks/log 2>&1 & stacks=$$!; \
	trap 'pkill -TERM -P "$$recovery,$$matrix,$$matrix2,$$blind,$$stacks"; exit 130' INT TERM; \
	timed strict $(call PYTEST,strict) $(call STREAM_FILES,strict) 2>&1 | tee $(RESULTS)/strict/log; strict=$${PIPESTATUS[0]}; \
	wait $$recovery; recovery=$$?; wait $$matrix; matrix=$$?; wait $$matrix2; matrix2=$$?; wait $$blind; blind=$$?; \
	wait $$stacks; stacks=$$?; \
	for name in recovery matrix matrix2 blind stacks; do \
		echo "--- stream $$name (ran beside the strict stream; whole log: $(RESULTS)/$$name/log)"; \
		tail -n 40 $(RESULTS)/$$name/log; \
	done; \
	cat $(foreach stream,$(STREAMS) matrix2,$(RESULTS)/$(stream)/summary); \
	exit $$(( strict != 0 ? strict : recovery != 0 ? recovery : matrix != 0 ? matrix : matrix2 != 0 ? matrix2 : \
		blind != 0 ? blind : stacks ))

# One shard, as a CI job runs it: `make test-shard SHARD=gates`, or a part of one:
# `make test-shard SHARD=matrix PART=1/2` (every 2nd test from the 1st: tests/ci_plugin.py).
SHARD ?=
PART ?=
SHARD_RUN = $(SHARD)$(if $(PART),-$(subst /,-of-,$(PART)))

test-shard: install  ## one shard of the suite (SHARD=name [PART=i/n]), as a CI job runs it
	@test -n "$(SHARD_$(SHARD))" || { echo "error: no shard '$(SHARD)'; shards: $(SHARDS)" >&2; exit 2; }
	@rm -rf $(RESULTS)/$(SHARD_RUN) && mkdir -p $(RESULTS)/$(SHARD_RUN) "$(TEST_TMP)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(call PYTEST,$(SHARD_RUN)) $(if $(PART),--part=$(PART)) $(SHARD_$(SHARD))

# What tests/test_ci.py checks: each shard's files and each stream's shards, one per line.
shards:  ## list the test shards and the streams of `make unit`
	@$(foreach shard,$(SHARDS),echo "shard $(shard): $(SHARD_$(shard))";)
	@$(foreach stream,$(STREAMS),echo "stream $(stream): $(STREAM_$(stream))";)

test: lint unit  ## install, lint, test: the README's test command and what .ci/run calls

demo: install  ## the local environment end to end: deploy v1, promote v2, reject a bad v3
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m orchestrator.demo

bench: install  ## benchmarks -> docs/performance.md
	$(UV_SYNC) $(EXTRAS) --extra bench
	rm -f $(STAMP)  # the next install syncs back to the test and dev extras
	$(BIN)/python bench/run_all.py

clean:  ## remove everything `install`, the local environment and the tests created
	-$(BIN)/orchestrator destroy --env local --yes 2>/dev/null
	rm -rf $(VENV) .tools .edgeship reports "$(TEST_TMP)"
