"""The local environment: the AWS API emulator (moto in server mode) and the local edge
that runs the deployed code, both daemons on 127.0.0.1 with their state in
`.edgeship/local`. The local stack (programs/local.py) creates its resources in the
emulator and runs the edge as one of them; releases reach the emulator through
orchestrator/stacks/clouds.py, as they reach AWS.
"""
