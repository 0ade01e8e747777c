"""A Celery worker killed (SIGKILL, as the OOM killer does) while it stores a backlog of lab messages: after
a restart and the periodic sweep, every message is stored exactly once. (Imaging has the same proof in
tests/diagnostics/test_pipeline.py.)"""

import time
from collections.abc import Callable

import pytest
from django.core.cache import cache

from devices import results
from devices.models import Device
from diagnostics.models import LabMessage, Observation
from hospitals.models import User
from tests.conftest import Network, PatientFactory
from tests.devices.test_hl7 import GLUCOSE, HBA1C, oru

MESSAGES = 600
pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def _until(done: Callable[[], bool], what: str, timeout: float = 120, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(every)


def _count(status: str) -> int:
    return LabMessage.objects.filter(status=status).count()


def test_a_worker_killed_while_storing_lab_messages_leaves_each_stored_once(
    network_a: Network,
    analyser: Device,
    tula_admin: User,
    celery_worker,
    settings,
    lab_reference,
) -> None:  # type: ignore[no-untyped-def]
    patients = [PatientFactory(hospital=network_a.regional) for _ in range(5)]
    celery_worker.kill()  # a backlog builds while no worker runs
    cache.delete(results.DRAIN_PENDING)
    for n in range(MESSAGES):
        # Each message its own sample (taken a minute apart): the same results twice would be one result.
        body = oru(patients[n % 5].record_number, GLUCOSE, HBA1C, control_id=f"KILL-{n}", ago=n + 1)
        assert results.hl7_receive(device=analyser, data=body.encode()).code == "AA"
    assert _count("queued") == MESSAGES

    celery_worker.start()
    # Killed once the first batches are stored and the rest are not: in the middle of the drain.
    _until(lambda: _count("done") > 0, "the worker began storing")
    celery_worker.kill()
    done_at_kill = _count("done")
    assert 0 < done_at_kill < MESSAGES, done_at_kill

    celery_worker.start()
    settings.LAB_STUCK_MINUTES = 0  # the periodic sweep, as it runs five minutes later
    assert results.hl7_messages_requeue_stuck() == _count("queued") > 0
    _until(lambda: _count("queued") == 0, "the rest stored after the restart", every=0.2)

    assert _count("done") == MESSAGES
    assert Observation.objects.count() == MESSAGES * 2  # nothing stored twice, nothing lost
    assert set(LabMessage.objects.values_list("stored", flat=True)) == {2}
