"""Where edgeship's own files are, found from the package's folder, so that a module can move
between packages without its paths moving with it. In a checkout, PACKAGE is orchestrator/ and
CHECKOUT the repository (whose .tools/ holds what `make install` fetched); in an installed
wheel, CHECKOUT is site-packages, where no .tools/ is found and the user's own is used."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
CHECKOUT = PACKAGE.parent
CHECKOUT_TOOLS = CHECKOUT / ".tools"

# Data shipped inside the package (pyproject's package-data).
SCHEMA = PACKAGE / "schema" / "edgeship.schema.json"
TEMPLATES = PACKAGE / "templates"
TOOLS = PACKAGE / "tools"
# The payload: orchestrator/programs and orchestrator/loadtests are symlinks to the repository's
# folders in a checkout and real folders in a wheel. resolve() names the real files in both.
FUNCTION_DIR = (PACKAGE / "programs" / "function").resolve()
SAMPLE_MODEL = (PACKAGE / "programs" / "function" / "sample" / "model.tar.gz").resolve()
LOCUSTFILE = (PACKAGE / "loadtests" / "locustfile.py").resolve()
