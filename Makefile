# Dynamic Segments: the commands a developer needs. See README.md.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEMO_CONTACTS ?= 2000

.PHONY: venv run test lint bench migrate demo

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade --quiet pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py setup_demo --contacts $(DEMO_CONTACTS)

run: demo
	$(PY) manage.py runserver 127.0.0.1:8000

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(PY) manage.py bench
