"""The operator's tools around stacks and releases: scaffold, IAM, doctor, invoke, logs."""
