"""edgeship.toml read, checked and explained; the names every resource gets."""
