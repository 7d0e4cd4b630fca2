"""Test-wide settings: no standby training workers in the app (each AppTest opens its own store,
so each would start its own standbys importing torch); the end-to-end server opts back in."""

import os

os.environ.setdefault("MTL_LAB_WARM_WORKERS", "0")
