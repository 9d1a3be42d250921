# Two commands on a fresh clone with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
EXTRAS ?= test,postgres,postcodes,demo,server,bench
# PostgreSQL for the second test run; `make test` skips it, saying so, when unreachable.
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/referral_test
PYTEST_ARGS ?=
# `make bench`: rows to build, and a database of its own (the bench empties it first)
BENCH_ROWS ?= 1000000
BENCH_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench

.PHONY: install demo serve lint format test test-sqlite test-postgres bench clean

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/flask --app wsgi referral upgrade
	$(BIN)/flask --app wsgi referral demo
	$(BIN)/flask --app wsgi run --port $(PORT)

serve: install
	$(BIN)/flask --app wsgi run --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/coverage erase
	$(BIN)/pytest --cov=referral --cov-report= $(PYTEST_ARGS)
	@if $(BIN)/python tests/pg_ready.py "$(PG_URL)"; then \
	  echo "== the same suite on PostgreSQL + PostGIS ($(PG_URL))"; \
	  REFERRAL_TEST_DATABASE_URL="$(PG_URL)" $(BIN)/pytest -m "not browser" \
	    --cov=referral --cov-append --cov-report= $(PYTEST_ARGS) || exit 1; \
	else \
	  echo "SKIPPED the PostgreSQL run: no PostgreSQL with PostGIS at $(PG_URL) (SQLite only)."; \
	fi
	$(BIN)/coverage report --precision=1

bench: install
	$(BIN)/python bench/search.py --rows $(BENCH_ROWS) --backend sqlite
	@if $(BIN)/python tests/pg_ready.py "$(BENCH_PG_URL)"; then \
	  $(BIN)/python bench/search.py --rows $(BENCH_ROWS) --backend postgresql --url "$(BENCH_PG_URL)"; \
	else \
	  echo "SKIPPED the PostgreSQL benchmark: no PostgreSQL with PostGIS at $(BENCH_PG_URL)."; \
	fi

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .coverage
