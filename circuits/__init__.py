"""Shipped hardware cards (TOML). Installed as the package ``analogdiff.circuits``."""
