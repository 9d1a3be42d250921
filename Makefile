# Two commands on a fresh clone with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
MAIL_PORT ?= 8025
EXTRAS ?= test,postgres,postcodes,demo,server,bench,redis
# Redis for the rate-limit tests (a database they share, each test under its own key prefix);
# they skip, saying so, when it is unreachable.
REDIS_URL ?= redis://127.0.0.1:6379/15
# PostgreSQL for the second test run; `make test` skips it, saying so, when unreachable.
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/referral_test
PYTEST_ARGS ?=
# `make bench`: rows to build, and a database of its own (the bench empties it first)
BENCH_ROWS ?= 1000000
BENCH_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench

.PHONY: install demo serve lint format test test-sqlite test-postgres bench bench-filters bench-api bench-export clean vendor chromium

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(BIN)/.installed

# instance/demo.cfg holds the demo's random secret key (made once) and its address; emails go
# to a local SMTP server that prints them (aiosmtpd, port MAIL_PORT), sent by the plugin's
# background sender, unless FLASK_REFERRAL_SMTP_* variables in the environment point elsewhere.
demo: install
	$(BIN)/python wsgi.py demo-settings --public-url "$${FLASK_REFERRAL_PUBLIC_URL:-http://127.0.0.1:$(PORT)}"
	$(BIN)/flask --app wsgi referral upgrade
	$(BIN)/flask --app wsgi referral demo
	@if env | grep -q '^FLASK_REFERRAL_SMTP_'; then \
	  echo "== mail goes to the SMTP server set in FLASK_REFERRAL_SMTP_*"; \
	  exec $(BIN)/flask --app wsgi run --port $(PORT); \
	fi; \
	echo "== emails are printed here by a local SMTP server on 127.0.0.1:$(MAIL_PORT)"; \
	$(BIN)/python -m aiosmtpd -n -l 127.0.0.1:$(MAIL_PORT) & mail=$$!; \
	trap 'kill $$mail 2>/dev/null' EXIT INT TERM; \
	FLASK_REFERRAL_SMTP_HOST=127.0.0.1 FLASK_REFERRAL_SMTP_PORT=$(MAIL_PORT) \
	  $(BIN)/flask --app wsgi run --port $(PORT)

serve: install
	$(BIN)/flask --app wsgi run --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The browser tests drive Debian's chromium; install it when missing and we may (root + apt),
# otherwise those tests skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== installing chromium for the browser tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "could not install chromium: the browser tests will skip."; \
	  else \
	    echo "chromium is not installed (needs root and apt): the browser tests will skip."; \
	  fi; }

test: lint chromium
	$(BIN)/coverage erase
	REFERRAL_TEST_REDIS_URL="$(REDIS_URL)" $(BIN)/pytest --cov=referral --cov-report= $(PYTEST_ARGS)
	@if $(BIN)/python tests/pg_ready.py "$(PG_URL)"; then \
	  echo "== the same suite on PostgreSQL + PostGIS ($(PG_URL))"; \
	  REFERRAL_TEST_DATABASE_URL="$(PG_URL)" REFERRAL_TEST_REDIS_URL="$(REDIS_URL)" \
	    $(BIN)/pytest -m "not browser" \
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

# Every filter shape (rare and "nobody matches" ones included), with and without the total,
# beside the naive scan in the same run: one JSON line per shape and a summary line each
bench-filters: install
	$(BIN)/python bench/filters.py --rows $(BENCH_ROWS) --backend sqlite
	@if $(BIN)/python tests/pg_ready.py "$(BENCH_PG_URL)"; then \
	  $(BIN)/python bench/filters.py --rows $(BENCH_ROWS) --backend postgresql --url "$(BENCH_PG_URL)"; \
	else \
	  echo "SKIPPED the PostgreSQL benchmark: no PostgreSQL with PostGIS at $(BENCH_PG_URL)."; \
	fi

# API requests/s under gunicorn (100,000 listings), beside the same search with nothing else;
# needs wrk (Debian: apt-get install wrk)
bench-api: install
	$(BIN)/python bench/search.py --rows 100000 --queries 10 --backend postgresql \
	  --url "$(BENCH_PG_URL)" --reuse --optimize > /dev/null
	$(BIN)/python bench/api.py --url "$(BENCH_PG_URL)"

# Every export (CSV, FHIR, FHIR over HTTP) on BENCH_EXPORT_ROWS listings, streamed, beside the
# same export built in memory as before: one JSON line each (seconds, RSS growth, peak RSS)
BENCH_EXPORT_ROWS ?= 100000
bench-export: install
	$(BIN)/python bench/export.py --rows $(BENCH_EXPORT_ROWS) --backend sqlite
	@if $(BIN)/python tests/pg_ready.py "$(BENCH_PG_URL)"; then \
	  $(BIN)/python bench/export.py --rows $(BENCH_EXPORT_ROWS) --backend postgresql --url "$(BENCH_PG_URL)"; \
	else \
	  echo "SKIPPED the PostgreSQL benchmark: no PostgreSQL with PostGIS at $(BENCH_PG_URL)."; \
	fi

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .coverage

# Front-end assets: pinned in package.json/package-lock.json, copied into the package (so they
# ship in the wheel) and into tests/ (the accessibility checker). The copies are committed, so
# neither `make install` nor `make test` needs npm; run this after changing a version.
LEAFLET_DIR := referral/static/referral/vendor/leaflet
vendor:
	npm ci --no-audit --no-fund
	rm -rf $(LEAFLET_DIR) && mkdir -p $(LEAFLET_DIR)/images tests/vendor
	cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/LICENSE $(LEAFLET_DIR)/
	cp node_modules/leaflet/dist/images/*.png $(LEAFLET_DIR)/images/
	cp node_modules/axe-core/axe.min.js tests/vendor/axe.min.js
	cp node_modules/axe-core/LICENSE tests/vendor/axe-core.LICENSE
