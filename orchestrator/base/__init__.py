"""The ground floor: errors with what to do, subprocesses, progress and output, fault points."""
