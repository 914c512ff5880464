"""Stored outputs must not depend on the machine: thread count, load, instruction set.

nbval (run by the same `make test`) re-executes every lesson once, on this machine as it
is, and compares its text outputs with the committed ones. That run cannot see output that
changes with the number of threads, with the load of the machine (the BLAS library picks
other kernels and splits work differently) or with the CPU's vector instructions (a learner's
laptop without AVX-512 runs other code paths in PyTorch, MKL, oneDNN, OpenBLAS and numpy).
Printed round-off such as ``largest difference 1.6e-07`` is exactly that kind of output.

So this test executes every lesson twice more, at the same time, and compares both runs with
the committed outputs under nbval's own rules (the same sanitize patterns from
`tests/nbval_sanitize.cfg`, the same skipped keys, the same `nbval-ignore-output` and
`nbval-skip` tags):

* ``one-thread-avx2``: one thread everywhere, and every library limited to AVX2 code
  paths, as on a laptop CPU without AVX-512;
* ``loaded``: the default thread count while a CPU-burning process and the other run
  compete for the cores.

A cell whose output changes fails with the notebook, the cell, its first source line and a
diff of the output.
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import coalesce_streams

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
TIMEOUT = 1800  # seconds for all lessons in one setting; they take about 3 minutes

# The instruction-set limits: each library's own switch for "use at most AVX2".
AVX2_ONLY = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own kernels
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL (PyTorch's BLAS on x86)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (PyTorch's convolution / matmul primitives)
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS (numpy's BLAS): the first AVX2 core
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy: AVX2 (x86-64-v3) loops only
}
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
SETTINGS = {
    "one-thread-avx2": {**ONE_THREAD, **AVX2_ONLY},
    "loaded": {},  # default threads; the load comes from the burner and the other run
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", *AVX2_ONLY)

# nbval's rules (nbval.plugin.IPyNbFile.skip_compare, without --nbdime): these keys are not compared.
SKIP_COMPARE = {"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg"}
SKIP_TAGS = {"nbval-ignore-output", "nbval-skip"}


def sanitize_patterns() -> list[tuple[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SANITIZE)
    return [(parser[section]["regex"], parser[section]["replace"]) for section in parser.sections()]


def comparable(outputs, patterns) -> list[str]:
    """The text nbval compares for one cell's outputs, one string per output field, sanitised."""
    fields = []
    for out in coalesce_streams([nbformat.from_dict(o) for o in outputs]):
        if out.output_type == "stream":
            items = [(out.name, out.text)]
        else:
            items = [(key, value) for key, value in out.items() if key != "data"]
            items += list(out.get("data", {}).items())
        for key, value in items:
            if key in SKIP_COMPARE:
                continue
            text = value if isinstance(value, str) else "".join(value) if isinstance(value, list) else repr(value)
            for regex, replace in patterns:
                text = re.sub(regex, replace, text)
            fields.append(f"[{key}]\n{text}")
    return fields


def differences(stored_path: Path, run_path: Path, patterns) -> list[str]:
    """One report per code cell whose compared output differs between the two notebooks."""
    stored, run = nbformat.read(stored_path, as_version=4), nbformat.read(run_path, as_version=4)
    stored_cells = [c for c in stored.cells if c.cell_type == "code"]
    run_cells = [c for c in run.cells if c.cell_type == "code"]
    assert len(stored_cells) == len(run_cells), f"{stored_path.name}: the executed copy has another number of code cells"
    reports = []
    for index, (a, b) in enumerate(zip(stored_cells, run_cells)):
        if SKIP_TAGS & set(a.metadata.get("tags", [])):
            continue
        expected, got = comparable(a.outputs, patterns), comparable(b.outputs, patterns)
        if expected != got:
            first_line = next((line for line in a.source.splitlines() if line.strip()), "")
            diff = "\n".join(difflib.unified_diff("\n".join(expected).splitlines(), "\n".join(got).splitlines(),
                                                  "stored", "this run", lineterm="", n=1))
            reports.append(f"{stored_path.name}, code cell {index} ({first_line[:70]!r}):\n{diff}")
    return reports


@pytest.fixture(scope="module")
def runs():
    """Execute every lesson under each setting, all at once, with a CPU burner running."""
    out_root = Path(tempfile.mkdtemp(prefix="stability-"))
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    procs = {}
    try:
        for name, overrides in SETTINGS.items():
            env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
            env.update(overrides)
            log = open(out_root / f"{name}.log", "w")
            procs[name] = (subprocess.Popen(
                [sys.executable, str(ROOT / "tools" / "execute_notebooks.py"), "--output-dir", str(out_root / name),
                 *map(str, NOTEBOOKS)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), log)
        for name, (proc, log) in procs.items():
            try:
                proc.wait(timeout=TIMEOUT)
            finally:
                log.close()
    finally:
        burner.kill()
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
        burner.wait()
    return out_root, {name: proc.returncode for name, (proc, _) in procs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_do_not_depend_on_threads_load_or_cpu(runs, setting, notebook):
    out_root, returncodes = runs
    run_path = out_root / setting / notebook.name
    log = (out_root / f"{setting}.log").read_text()
    assert run_path.exists(), f"{notebook.name} was not executed under {setting} (exit {returncodes[setting]}):\n{log[-3000:]}"
    reports = differences(notebook, run_path, sanitize_patterns())
    assert not reports, f"outputs that change under {setting} ({SETTINGS[setting]}):\n\n" + "\n\n".join(reports)


def test_comparison_can_fail(tmp_path):
    """The comparison sees a changed digit, ignores what nbval ignores, and applies the sanitize patterns."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(x)"), nbformat.v4.new_code_cell("w"), nbformat.v4.new_code_cell("f")]
    nb.cells[1].metadata["tags"] = ["nbval-ignore-output"]
    stream = lambda text: nbformat.v4.new_output("stream", name="stdout", text=text)  # noqa: E731
    nb.cells[0].outputs = [stream("largest difference 1.8e-07\n")]
    nb.cells[1].outputs = [stream("12.3 ms\n")]
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "<Figure size 640x480 with 1 Axes>"})]
    stored = tmp_path / "stored.ipynb"
    nbformat.write(nb, stored)
    nb.cells[0].outputs = [stream("largest difference 1.6e-07\n")]
    nb.cells[1].outputs = [stream("99.9 ms\n")]  # ignored: tagged
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "<Figure size 320x240 with 1 Axes>"})]
    run = tmp_path / "run.ipynb"
    nbformat.write(nb, run)
    reports = differences(stored, run, sanitize_patterns())
    assert len(reports) == 1 and "code cell 0" in reports[0]
    assert "-largest difference 1.8e-07" in reports[0] and "+largest difference 1.6e-07" in reports[0]
