# Dynamic Segments: the commands a developer needs. See README.md.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEMO_CONTACTS ?= 2000

.PHONY: venv run test lint bench migrate demo bench-data bench-small-db bench-ingest bench-stats bench-campaigns \
	bench-builder bench-segments bench-membership bench-quickstart

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

# Benchmarks need PostgreSQL (stock settings are fine; none are assumed). The segment and membership ones read
# the 1,000,000-contact data set and, for growth factors, a 100,000-contact one, both loaded once:
#   make bench-data   (manage.py seed_demo into BENCH_DATABASE_URL and BENCH_100K_DATABASE_URL; see docs/benchmarks.md)
# bench-quickstart measures the quick start's SQLite database and needs no server.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ds_bench
BENCH_100K_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ds_bench_100k
BENCH_SMALL_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ds_bench_small
BENCH_ENV := DATABASE_URL=$(BENCH_DATABASE_URL)
BENCH_100K_ENV := DATABASE_URL=$(BENCH_100K_DATABASE_URL)
BENCH_SMALL_ENV := DATABASE_URL=$(BENCH_SMALL_DATABASE_URL)

# A fresh database each time: what a new user has, with nothing analysed or cached from an earlier load.
bench-data: venv
	dropdb -h 127.0.0.1 -U postgres --if-exists ds_bench
	createdb -h 127.0.0.1 -U postgres ds_bench
	$(BENCH_ENV) $(PY) manage.py migrate --noinput
	$(BENCH_ENV) $(PY) manage.py seed_demo --contacts 1000000 --seed 1
	dropdb -h 127.0.0.1 -U postgres --if-exists ds_bench_100k
	createdb -h 127.0.0.1 -U postgres ds_bench_100k
	$(BENCH_100K_ENV) $(PY) manage.py migrate --noinput
	$(BENCH_100K_ENV) $(PY) manage.py seed_demo --contacts 100000 --seed 1

bench-small-db: venv
	createdb -h 127.0.0.1 -U postgres ds_bench_small 2>/dev/null || true
	$(BENCH_SMALL_ENV) $(PY) manage.py migrate --noinput

bench-ingest bench-stats bench-campaigns bench-builder: bench-small-db
	$(BENCH_SMALL_ENV) $(PY) -m bench.$(subst bench-,,$@)

bench-segments: venv
	$(BENCH_100K_ENV) $(PY) manage.py migrate --noinput
	$(BENCH_100K_ENV) $(PY) -m bench.segments --output bench/results/segments-100k.json
	$(BENCH_ENV) $(PY) manage.py migrate --noinput
	$(BENCH_ENV) $(PY) -m bench.segments --growth-from bench/results/segments-100k.json

bench-membership: venv
	$(BENCH_ENV) $(PY) manage.py migrate --noinput
	$(BENCH_ENV) $(PY) -m bench.membership

bench-quickstart: venv
	$(PY) -m bench.quickstart

bench: bench-ingest bench-stats bench-segments bench-membership bench-campaigns bench-quickstart
