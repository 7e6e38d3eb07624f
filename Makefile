# Terminal Guard — the two commands of the README, plus a few for developers.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench system-deps clean package soak

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[hq,dev]'
	touch $(STAMP)

## make run: set up, start a local HQ (SQLite, self-signed CA, loopback), enroll a local agent, run agent + tray
run: $(STAMP)
	$(PY) scripts/run_local.py

## make test: set up (Debian packages too when root) and run the whole suite
test: $(STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/pytest -q

## make soak: the chaos and abuse suites in their long form (TG_SOAK=1: longer outages, kill storms and
## fuzzing budgets), then every fuzz target past 100,000 inputs under atheris
soak: $(STAMP) system-deps
	TG_SOAK=1 TG_CHAOS_REPORT=test-artifacts/soak-report.txt $(VENV)/bin/pytest -q -s --timeout=3600 \
		tests/chaos tests/abuse
	$(PY) tests/fuzz/run_atheris.py --runs 100000

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

system-deps:
	scripts/install-system-deps.sh

## make bench: every benchmark; each prints a ratio against a baseline measured in the same run
bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## make package: what this machine can build, into dist/: the .deb, and the MSI around a staged
## placeholder payload (or around a real PyInstaller payload: make package PAYLOAD=path/to/payload)
package: system-deps
	installer/linux/build_deb.sh --out dist
	installer/windows/build_msi.sh $(if $(PAYLOAD),--payload $(PAYLOAD),--staged-payload) --out dist

clean:
	rm -rf $(VENV) .run build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
