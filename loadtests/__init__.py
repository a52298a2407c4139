"""The Locust load shape edgeship's gates run (locustfile.py, passed to Locust by path).

This folder is the package `orchestrator.loadtests` (orchestrator/loadtests is a symlink to
it; the wheel ships it there) and nothing else: imported as a top-level `loadtests` (a
checkout's root on sys.path) it refuses, as programs/__init__.py explains.
"""

if __name__ != "orchestrator.loadtests":
    raise ImportError(
        f"edgeship's load tests are the package `orchestrator.loadtests`, not `{__name__}`: "
        "import orchestrator.loadtests, or run the file: locust -f loadtests/locustfile.py",
        name=__name__,
    )
