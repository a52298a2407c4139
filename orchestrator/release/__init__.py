"""A promotion: its state machine, driver, record, lease, traffic moves and reports."""
