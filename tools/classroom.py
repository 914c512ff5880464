"""Teacher tooling for running the course on a JupyterHub (see docs/classroom.md).

    python tools/classroom.py link --hub https://hub.example.org --repo https://github.com/OWNER/REPO --branch main
    python tools/classroom.py load-test --learners 5 10 20          # or: make classroom-test

`link` prints the nbgitpuller link that a learner clicks: the hub logs them in, starts
their server, pulls (clones, later merges) the course into ~/REPO and opens lesson 00 in
JupyterLab. It needs only Python's standard library, so a teacher runs it with any
Python 3 and no course environment.

`load-test` starts a real JupyterHub on 127.0.0.1 (configurable-http-proxy from
classroom/node_modules, a shared-password authenticator, the local-process spawner),
creates N learners, and, as a room does, starts all their servers at once, has every
learner log in, open the nbgitpuller link and pull the course from a local git copy, then
runs one lesson in a kernel per learner, all at the same moment ("Run All"), through the
hub's proxy and the Jupyter server's kernel API. It prints, per learner and as p50/p95/max:
time to a ready server, pull time, lesson time, the kernel's peak memory (its own
ru_maxrss) and the learner's peak resident memory (server and kernel), and failures.
Everything is bounded in time, on loopback only, and cleaned up (processes, users, files)
on success, failure, timeout or Ctrl-C. Its extra tools: `make classroom-setup`.

Why a script in tools/ and not `python -m attn_core.classroom`: attn_core is the learners'
library of attention maths; these are a teacher's tools for a server. The link must be
makeable on a laptop that has not installed the course's stack (torch and all), and the
load test needs JupyterHub, which the course's environment does not carry.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse

START_LESSON = "notebooks/00_start_here.ipynb"


# ---------------------------------------------------------------------------------------
# The nbgitpuller link (standard library only).

def default_targetpath(repo: str) -> str:
    """The folder the course lands in: the repository's name, without a trailing .git."""
    name = repo.rstrip("/").split("/")[-1]
    return name[: -len(".git")] if name.endswith(".git") else name


def nbgitpuller_link(hub: str, repo: str, branch: str = "main", *, lesson: str = START_LESSON,
                     targetpath: str | None = None, app: str = "lab") -> str:
    """The nbgitpuller link that pulls `repo` at `branch` into ~/`targetpath` and opens `lesson`.

    The link goes to the hub's /hub/user-redirect/, which logs the learner in (if needed),
    starts their server and forwards to nbgitpuller's /git-pull on it. Every query value is
    percent-encoded, slashes included (as nbgitpuller's own link generator does), so a
    repository URL with its own query or a branch like ``spring/2027`` survives intact.

    Args:
        hub: the hub's address, e.g. ``https://hub.example.org`` (a base path such as
            ``https://example.org/jupyter`` is kept).
        repo: the course repository's git URL (https://... or, for tests, file://...).
        branch: the branch learners pull.
        lesson: the notebook to open, relative to the repository root.
        targetpath: the folder in the learner's home; default: the repository's name.
        app: ``"lab"`` (JupyterLab) or ``"notebook"`` (Notebook 7's single-document view).

    Returns:
        The link, e.g. ``https://hub.example.org/hub/user-redirect/git-pull?repo=...&branch=main
        &targetpath=REPO&urlpath=lab%2Ftree%2FREPO%2Fnotebooks%2F00_start_here.ipynb``.
    """
    parsed = urllib.parse.urlsplit(hub)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"hub must be an http(s) address such as https://hub.example.org, got {hub!r}")
    if parsed.query or parsed.fragment:
        raise ValueError(f"hub must be the hub's address without a query or fragment, got {hub!r}")
    if not isinstance(repo, str) or not repo.strip() or any(ch.isspace() for ch in repo):
        raise ValueError(f"repo must be a git URL such as https://github.com/OWNER/REPO, got {repo!r}")
    if not branch or branch.startswith("-") or any(ch.isspace() for ch in branch):
        raise ValueError(f"branch must be a branch name such as 'main', got {branch!r}")
    if app not in ("lab", "notebook"):
        raise ValueError(f"app must be 'lab' or 'notebook', got {app!r}")
    lesson = lesson.strip("/")
    if not lesson.endswith(".ipynb") or ".." in lesson.split("/"):
        raise ValueError(f"lesson must be a notebook path inside the repository, got {lesson!r}")
    targetpath = default_targetpath(repo) if targetpath is None else targetpath
    if not targetpath or targetpath in (".", "..") or "/" in targetpath:
        raise ValueError(f"targetpath must be one folder name, got {targetpath!r}")
    view = "lab/tree" if app == "lab" else "notebooks"
    query = {"repo": repo, "branch": branch, "targetpath": targetpath,
             "urlpath": f"{view}/{targetpath}/{lesson}"}
    encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{encoded}"


def _link_main(args: argparse.Namespace) -> int:
    print(nbgitpuller_link(args.hub, args.repo, args.branch, lesson=args.lesson,
                           targetpath=args.targetpath, app=args.app))
    return 0


# ---------------------------------------------------------------------------------------
# The load test lives in tools/classroom_load.py (it needs JupyterHub and friends).

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/classroom.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    link = sub.add_parser("link", help="print the nbgitpuller link that opens lesson 00 in JupyterLab")
    link.add_argument("--hub", required=True, help="the hub's address, e.g. https://hub.example.org")
    link.add_argument("--repo", required=True, help="the course's git URL, e.g. https://github.com/OWNER/REPO")
    link.add_argument("--branch", default="main", help="the branch learners pull (default: main)")
    link.add_argument("--lesson", default=START_LESSON, help=f"the notebook to open (default: {START_LESSON})")
    link.add_argument("--targetpath", default=None, help="folder in each learner's home (default: the repository's name)")
    link.add_argument("--app", default="lab", choices=["lab", "notebook"], help="open in JupyterLab (default) or Notebook")
    link.set_defaults(func=_link_main)

    load = sub.add_parser("load-test", help="start a real hub on 127.0.0.1 and measure N learners running a lesson at once")
    load.set_defaults(func=None)

    args, rest = parser.parse_known_args(argv)
    if args.command == "load-test":
        sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
        import classroom_load

        return classroom_load.main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    try:
        return args.func(args)
    except ValueError as err:
        parser.error(str(err))
        return 2


if __name__ == "__main__":
    sys.exit(main())
