"""What to run after a promotion stopped because its record could not be written (exit 8).

The driver acts, then writes the phase that follows. When that write fails, the record in
S3 says either the phase before (the write never landed) or the new one (it landed and only
its answer was lost), and the action is done either way. So the right command follows from
the phase the failed write carried, and from nothing else. Pure: table-tested without I/O.
"""

from __future__ import annotations

from orchestrator.machine import Phase

# The write was a step forward (or the start of one): the step's action is done, nothing is
# settled, so both ways out are open.
_FORWARD = frozenset(
    {
        Phase.PLANNED,
        Phase.PRE_TRAFFIC,
        Phase.SHIFTING,
        Phase.BAKING,
        Phase.GATING,
        Phase.PAUSED,
        Phase.PROMOTING,
    }
)
# The write began or ended a rollback: live is on blue, or on its way there; `abort` finishes
# a rollback the record still calls rolling_back, and has nothing to do once it says it ended.
_BACK = frozenset({Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED})


def after_failed_write(env: str, written: Phase) -> str:
    """The fix for a failed record write whose body said `written`."""
    if written == Phase.PROMOTED:
        # live is on green alone (promoting's action finished): `abort` would undo a promotion
        # that succeeded, since a record left at promoting is an interrupted one.
        return (
            f"live already serves green alone: the promotion succeeded, only its record may not say so. "
            f"Once S3 answers, `orchestrator status --env {env}`: promoted, nothing to undo; still "
            f"promoting, `orchestrator promote --env {env} --resume` records it as promoted "
            f"(`orchestrator abort` would put live back on blue)"
        )
    if written in _BACK:
        return (
            f"run `orchestrator abort --env {env}` once AWS (or the emulator) answers: it finishes "
            "putting live on blue (nothing to do if the record already says the rollback ended)"
        )
    assert written in _FORWARD, written  # every phase is in one of the three
    return (
        f"once AWS (or the emulator) answers, `orchestrator abort --env {env}` puts live back on blue, "
        f"or `orchestrator promote --env {env} --resume` goes on from the recorded step"
    )
