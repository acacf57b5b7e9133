# SPDX-License-Identifier: Apache-2.0
# pDNSSOC: the two commands an operator needs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV    := $(CURDIR)/.venv
BIN     := $(VENV)/bin
CACHE   := $(CURDIR)/.cache
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Reference data from outside the project (skipped in tests when absent).
export PDNSSOC_SHARED ?= $(abspath $(CURDIR)/../shared)

PYTHON_SOURCES := agent/src agent/tests agent/benchmarks lab molecule

.PHONY: help deps venv syntax lint test test-agent test-lab test-lab-scenarios test-roles lab-host collector bench clean purge demo demo-down test-e2e

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: $(CACHE)/apt.stamp ## install the Debian packages of apt-packages.txt (as root)
$(CACHE)/apt.stamp: apt-packages.txt scripts/apt-install
	scripts/apt-install apt-packages.txt
	mkdir -p $(CACHE) && touch $@

venv: $(VENV)/.stamp ## create .venv with the pinned tool chain, the agent and the lab package
$(VENV)/.stamp: requirements-dev.txt agent/requirements.txt agent/pyproject.toml lab/pyproject.toml | $(CACHE)/apt.stamp
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --cache-dir $(CACHE)/pip -q -r requirements-dev.txt -r agent/requirements.txt
	$(BIN)/pip install --disable-pip-version-check --cache-dir $(CACHE)/pip -q --no-deps -e agent
	$(BIN)/pip install --disable-pip-version-check --cache-dir $(CACHE)/pip -q --no-deps -e lab
	touch $@

syntax: venv ## ansible-playbook --syntax-check of every playbook against every inventory
	for inv in inventories/*/; do for pb in playbooks/*.yml; do \
	  ansible-playbook --syntax-check -i "$$inv" "$$pb" >/dev/null || { echo "syntax: $$pb with $$inv failed" >&2; exit 1; }; \
	done; done; echo "syntax: playbooks/*.yml OK with $$(ls -d inventories/*/ | tr '\n' ' ')"

lint: venv syntax ## ruff, mypy, yamllint, ansible-lint, playbook syntax, promtool on the alert rules
	ruff check $(PYTHON_SOURCES)
	ruff format --check $(PYTHON_SOURCES)
	cd agent && mypy src  # strict, as agent/pyproject.toml says
	cd lab && mypy src  # strict, as lab/pyproject.toml says
	yamllint -s .
	ansible-lint
	ansible-playbook -i scripts/role-contract/inventory.yml scripts/role-contract/check.yml >/dev/null
	shellcheck lab/*.sh lab/run-molecule lab/ssh-proxy scripts/apt-install scripts/purge scripts/test-all
	shellcheck -x lab/demo/*.sh
	promtool check rules monitoring/prometheus/*.rules.yml
	promtool test rules monitoring/prometheus/*.rules.test.yml
	scripts/lint-host-scripts

test-agent: venv ## the agent's test suite (on every core: pytest-xdist)
	cd agent && pytest -n auto

test-lab: venv collector ## the lab package's tests (the MISP stand-in driven by the real PyMISP; the sensor's reducer with the real collector)
	cd lab && pytest -n auto

lab-host: deps ## podman set-up, the lab base image, and a check of every capability the lab needs (as root)
	lab/host-setup.sh

collector: ## build go-dnscollector into .cache/collector (release-mirror layout; cached)
	lab/build-collector.sh

test-roles: venv lab-host collector ## molecule test of every role scenario (ROLES=name... for some)
	lab/run-molecule $(ROLES)

# The order of make test (scripts/test-all): the lab host and the collector,
# then the end-to-end scenario, in the background while lint and the unit
# tests run in the foreground; the role scenarios join when those are done.
test: venv ## everything CI runs: lint, unit tests, then every lab scenario
	scripts/test-all

test-e2e: venv lab-host collector ## end-to-end scenario on the lab (molecule/default, about 20 min)
	molecule test -s default

test-lab-scenarios: venv lab-host collector ## every role scenario and, side by side, the end-to-end one (what make test runs)
	lab/run-molecule --with-e2e

demo: venv ## the lab end to end: sensor, server, MISP stand-in, mail sink; prints alerts (as root)
	lab/demo/demo.sh

demo-down: ## remove the lab of make demo (containers and network)
	lab/demo/lab.sh down

bench: venv ## agent benchmarks: figures, not pass/fail (BENCH=name for one)
	cd agent && $(BIN)/python -m benchmarks $(BENCH)

purge: ## take away all that demo and test installed (packages, podman storage, image, .venv, .cache): the next run starts as on a fresh machine
	scripts/purge

clean: ## remove the virtual environment and caches (not the lab)
	rm -rf $(VENV) $(CACHE) agent/build agent/src/*.egg-info lab/build lab/src/*.egg-info
