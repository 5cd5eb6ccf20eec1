"""Root conftest.

The cloudrun-smoke pytest plugin is registered once, through the ``pytest11`` entry point of the
installed package; registering it here as well would load it twice. This file only enables
pytest's own ``pytester`` helper for our tests.
"""

pytest_plugins = ["pytester"]
