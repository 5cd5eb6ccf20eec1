"""Where things are, for tests in any folder: the repository, the test services, the tiny service's command."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "tests" / "services"
TINY_SERVICE = SERVICES / "tiny_service.py"
TINY = f"{sys.executable} {TINY_SERVICE}"
