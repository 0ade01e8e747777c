"""A consultation with its two sides, ready for a call."""

from dataclasses import dataclass

import pytest

from consultations.models import Consultation
from hospitals.models import Staff, User
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make


@dataclass
class Sides:
    consultation: Consultation
    clinician: User
    specialist: User
    network: Network


@pytest.fixture
def sides(network_a: Network) -> Sides:
    """An accepted request from Tula, taken by a Moscow specialist (who has a second factor)."""
    clinician = StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    consultation = consultation_make(
        PatientFactory(hospital=network_a.regional), state="accepted", requested_by=clinician, assigned_to=specialist
    )
    return Sides(consultation, clinician, specialist, network_a)
