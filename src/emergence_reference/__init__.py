"""Reference implementation of the EmergenceV8 backend contract (``/work/shared/emergence-api.md``).

The local Cloud Run stack runs it as the default revision so that the smoke suite has a faithful
service to prove itself against without a cloud account. Faults can be switched on to check that
the suite notices when the service misbehaves (see :mod:`emergence_reference.faults`).
"""

from __future__ import annotations

__version__ = "0.1.0"
