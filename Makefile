# The two set-up commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STUDY := $(shell sed -n 's/^study: *\([A-Za-z0-9_]*\).*/\1/p' config/config.yaml)
# Installed once per version of pyproject.toml; later runs skip the install (near-instant).
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slurm lint check-results clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# The default study on the embedded synthetic data, then its HTML report.
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/$(STUDY)/report.html
	@echo "Tables: results/$(STUDY)/tables/   Report: results/$(STUDY)/report.html"

# Before a release: rerun the demo and check that the numbers in README.md and docs/results.md
# are those it produces (provenance lines aside). Not part of `make test` (it adds the demo).
check-results: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/python docs/results.py results/$(STUDY) --check

# Unit and workflow tests, the SLURM test where it can run (as root, with apt-get or SLURM
# installed: CI), then the linters.
test: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the report's browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "chromium could not be installed: the report's browser test is skipped"; \
	fi
	$(BIN)/python -m pytest
	@if [ "$$(id -u)" = 0 ] && { command -v apt-get || command -v slurmctld; } >/dev/null; then \
		$(MAKE) test-slurm; \
	else \
		echo "SLURM test not run: it needs root to install and start SLURM (sudo make test-slurm)"; \
	fi
	$(MAKE) lint

# A small study through profiles/slurm on a throw-away single-node SLURM (tests/slurm/).
test-slurm: $(STAMP)
	MEDIMBALANCE_SLURM_TEST=1 $(BIN)/python -m pytest tests/slurm

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check workflow/
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake resources/synthetic
