# SIGINT first: a cancel that arrives while the CLI's modules import must cancel too, even
# when the process started with SIGINT ignored (orchestrator/interrupts.py).
from orchestrator.interrupts import cancel_on_sigint, interrupted

cancel_on_sigint()
try:
    from orchestrator.cli import main
except KeyboardInterrupt:
    interrupted()

main()
