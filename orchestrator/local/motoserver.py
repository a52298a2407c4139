"""The emulator's process: moto's server with what the local environment adds to it.

`python -m orchestrator.local.motoserver` takes moto.server's arguments. Before the server
starts, provisioned concurrency (orchestrator/local/provisioned.py) and GetAccountSettings
(orchestrator/local/account_settings.py) are added to its Lambda API, version numbers are
never reused (orchestrator/local/version_numbers.py) and alias RevisionIds are AWS's
(orchestrator/local/alias_revisions.py); everything else is moto's own.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from moto import server

    from orchestrator.local import account_settings, alias_revisions, provisioned, version_numbers

    alias_revisions.install()
    provisioned.install()
    account_settings.install()
    version_numbers.install()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
