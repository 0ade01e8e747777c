"""The call fixtures of tests/consultations, for the signalling fuzzer."""

from tests.consultations.conftest import sides  # noqa: F401
from tests.consultations.test_calls import answered  # noqa: F401
