"""What edgeship deploys: the inline Pulumi program and the Lambda code.

This folder is the package `orchestrator.programs` (orchestrator/programs is a symlink to it;
the wheel ships it there) and nothing else. In a checkout its parent is often on sys.path
(tests, `python -m` from the root), where it could also be imported as `programs`: a second
module identity (its providers pickled under two names, two copies of each module's state),
and a top-level name that a user's own package of that name shadows or is shadowed by. So
under any other name it refuses, and no `import programs` survives anywhere, the Pulumi
dynamic-provider process included. An ImportError (not an edgeship error): this payload
imports nothing of ours, and it is what callers of `import_module` (`--program`) expect.
"""

if __name__ != "orchestrator.programs":
    raise ImportError(
        f"edgeship's programs are the package `orchestrator.programs`, not `{__name__}`: import "
        "orchestrator.programs (`from orchestrator.programs import serving`; "
        "`--program orchestrator.programs.serving:program`)",
        name=__name__,
    )
