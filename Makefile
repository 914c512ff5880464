# Two commands a newcomer needs: `make lab` (set up, then open the course in JupyterLab)
# and `make test` (set up, then run every test: unit, property, widget, nbval, browser).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test setup bench bench-widgets bench-notebooks html clean

# JupyterLab refuses to run as root ("Running as root is not recommended. Use --allow-root
# to bypass."), yet root is who runs a container, a classroom VM or a cloud notebook box:
# there, and only there, `make lab` passes --allow-root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter trust notebooks/*.ipynb
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/00_start_here.ipynb

test: $(STAMP)
	$(BIN)/python -m pytest

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed: '$(PYTHON)' was not found (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_attention.py

bench-widgets: $(STAMP)
	$(BIN)/python benchmarks/bench_widgets.py

bench-notebooks: $(STAMP)
	$(BIN)/python benchmarks/bench_notebooks.py

html: $(STAMP)
	$(BIN)/python tools/export_html.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
