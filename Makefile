# Two commands for a fresh clone: `make demo` (the app with the shipped model, on PORT) and `make test`.
# Both first create or update .venv from the pinned requirements, and only when those files changed.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 7860
STAMP := $(VENV)/.requirements-installed

.PHONY: demo test venv

demo: $(STAMP)
	$(VENV)/bin/python app.py --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

venv: $(STAMP)

# requirements-nodeps.txt (facenet-pytorch) pins outdated torch and numpy; it runs with ours, so no dependencies.
$(STAMP): requirements.txt requirements-nodeps.txt
	[ -x $(VENV)/bin/python ] || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip install --upgrade pip; }
	$(VENV)/bin/python -m pip install -r requirements.txt
	$(VENV)/bin/python -m pip install --no-deps -r requirements-nodeps.txt
	touch $@
