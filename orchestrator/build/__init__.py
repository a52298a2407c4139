"""What ships: the function's zip, the model archive and its contract."""
