# SIGINT first: a cancel that arrives while the CLI's modules import must cancel too, even
# when the process started with SIGINT ignored (orchestrator/base/interrupts.py). Inside the try:
# a SIGINT can land the moment the handler is in place, before the next line runs (CI).
from orchestrator.base.interrupts import cancel_on_sigint, interrupted

try:
    cancel_on_sigint()
    from orchestrator.cli import main
except KeyboardInterrupt:
    interrupted()

main()
