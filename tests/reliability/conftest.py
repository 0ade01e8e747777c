"""Fixtures of other suites that the reliability tests reuse: Tula's analyser and its admin, a real worker."""

from tests.devices.conftest import analyser, tula_admin  # noqa: F401
from tests.diagnostics.conftest import celery_worker  # noqa: F401
