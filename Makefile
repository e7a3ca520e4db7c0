# hostguard.hosting — the two commands are `make demo` and `make test`.
# Both install what they need (Debian packages, .venv) and must run as root.
SHELL := /bin/bash
VENV := .venv
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections:$(HOME)/.ansible/collections

.PHONY: help setup test lint sanity unit molecule demo lab-up lab-down lab-status build bench clean

help:
	@echo "make demo      boot a 3-host lab fleet, audit it, harden it, print what changed"
	@echo "make test      lint, ansible-test sanity, unit tests, every molecule scenario on the lab"
	@echo "make lab-down  stop every lab and remove all it made"
	@echo "make molecule SCENARIO=baseline   run one molecule scenario"
	@echo "make build     build the collection tarball"

setup:
	@scripts/setup.sh

test:
	@scripts/test.sh

lint sanity unit:
	@scripts/test.sh $@

molecule:
	@MOLECULE_SCENARIOS="$(SCENARIO)" scripts/test.sh molecule

demo:
	@scripts/demo.sh

lab-up: setup
	@$(VENV)/bin/python tests/lab/lab.py up --name demo --host web1:web@postfix-trixie --host mail1:mail@postfix-trixie \
		--host mixed1:web,mail@postfix-trixie \
		--inventory .build/demo-inventory.yml

lab-down:
	@$(VENV)/bin/python tests/lab/lab.py down --all

lab-status:
	@$(VENV)/bin/python tests/lab/lab.py status

build: setup
	@mkdir -p .build/dist && $(VENV)/bin/ansible-galaxy collection build --force --output-path .build/dist

clean: lab-down
	rm -rf .build
