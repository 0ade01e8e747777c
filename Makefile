# M-Hospital: `make run` starts the platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The DICOM C-STORE listener started by `make run` (settings read the same variables).
DICOM_LISTENER_AE_TITLE ?= MHOSPITAL
DICOM_LISTENER_PORT ?= 11112

.PHONY: run test lint typecheck messages clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed" or 0)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

# Test and lint tools on top of the runtime.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	@echo "M-Hospital: http://$(HOST):$(PORT)/  (Ctrl-C stops the server, the worker and the DICOM and MLLP listeners)"
	@echo "DICOM C-STORE: AE title $(DICOM_LISTENER_AE_TITLE) at $(HOST):$(DICOM_LISTENER_PORT); demo device AE title TULA_US1"
	@trap 'kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery --quiet -A mhospital worker --beat --concurrency 2 --loglevel INFO & \
	$(PY) manage.py dicom_listen --host $(HOST) & \
	$(PY) manage.py mllp_listen --host $(HOST) & \
	$(VENV)/bin/uvicorn mhospital.asgi:application --host $(HOST) --port $(PORT) --proxy-headers --ws websockets-sansio --ws-per-message-deflate false

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy .

messages: $(VENV)/.installed-dev
	$(PY) manage.py makemessages -l ru --no-obsolete --ignore '.venv/*' --ignore 'var/*'
	$(PY) manage.py compilemessages --ignore '.venv/*'

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
