# Fieldsync — the two quick-start commands are `make run` and `make test`.
# Both work on a fresh Debian machine: they create .venv, install what is missing
# (Debian packages too when run as root) and then do their job.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
HOST   ?= 127.0.0.1
DB_URL ?= sqlite:///$(CURDIR)/var/fieldsync.db
# pytest-xdist workers for `make test`/`make pytest` (one per core of the 2-core CI
# machine; files stay whole on one worker). PYTEST_WORKERS=0: one process, as before.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadfile

# Debian packages the headless Kivy tests and CJK rendering need.
# chromium: the browser tests of the console (driven by Playwright, never `playwright install`).
# nginx: the load-balancer tests (deploy/nginx/fieldsync.conf in front of two instances).
DEB_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libmtdev1 fonts-wqy-microhei chromium nginx

.PHONY: run test lint typecheck pytest deps deb-deps app bench schemas screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the project metadata changes.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-server: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'
	touch $@

deb-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	fi

deps: deb-deps $(VENV)/.installed-dev

## make run — migrate ./var/fieldsync.db, seed demo data when new, serve on $(HOST):$(PORT)
run: $(VENV)/.installed-server
	@mkdir -p var
	FIELDSYNC_ENV=development $(BIN)/fieldsync db upgrade --database-url '$(DB_URL)'
	FIELDSYNC_ENV=development $(BIN)/fieldsync seed-demo --if-empty --database-url '$(DB_URL)'
	FIELDSYNC_ENV=development $(BIN)/fieldsync serve --host $(HOST) --port $(PORT) --database-url '$(DB_URL)'

## make test — ruff, mypy and pytest over the whole repository
test: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

lint: deps
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

pytest: deps
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

## make app — the Kivy app on the desktop against the demo server (make run in another shell)
app: deps
	$(BIN)/python -m mobile_app --server http://$(HOST):$(PORT)

## make schemas — regenerate docs/protocol/*.json from the pydantic models
schemas: deps
	$(BIN)/python -m sync_protocol.jsonschema docs/protocol

## make screenshots — render every app screen and every console page (zh, en) into docs/screenshots/
screenshots: deps
	$(BIN)/python -m mobile_app.screenshots docs/screenshots
	$(BIN)/python -m server.console.screenshots docs/screenshots

## make bench — the benchmark suite, writing bench/results/ and docs/benchmarks.md
bench: deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
