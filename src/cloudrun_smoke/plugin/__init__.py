"""The pytest skin over the harness (the ``pytest11`` entry point): options, hooks and fixtures only;
what they do is done by library objects in the other subpackages.

- ``options``: the command line and the environment it selects
- ``state``: what one run holds, one object under one stash key
- ``collection``: which checks run, in which order
- ``fixtures``: the environment, the service, the run, its users and its log watcher
- ``window``: the window checks' selection and fixtures
- ``regression``: the regression checks' baseline and their one judgement
- ``reporting``: outcomes, the verdict, ``--rollback-on-failure``, the summary
- ``stop``: ending a run whose environment is unusable (exit status 4)
"""

pytest_plugins = (
    "cloudrun_smoke.plugin.options",
    "cloudrun_smoke.plugin.stop",
    "cloudrun_smoke.plugin.collection",
    "cloudrun_smoke.plugin.fixtures",
    "cloudrun_smoke.plugin.reporting",
    "cloudrun_smoke.plugin.window",
    "cloudrun_smoke.plugin.regression",
)
