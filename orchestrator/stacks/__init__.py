"""The Pulumi engine, the clouds, and an environment as its stack describes it."""
