"""Celery tasks of the devices' ways in: thin, by id, safe to run twice."""

from celery import Task, shared_task
from django.db import DatabaseError

from devices import results

MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def hl7_messages_drain(self: Task) -> int:
    """Store queued HL7 messages, a batch per transaction, until none is left; database trouble is retried
    with backoff (and after the last try the periodic sweep starts a drain again)."""
    results.hl7_drain_started()
    drained = 0
    try:
        while True:
            count = results.hl7_messages_drain()
            drained += count
            if count < results.DRAIN_BATCH:
                return drained
    except DatabaseError as exc:
        if self.request.retries >= MAX_RETRIES:
            return drained
        raise self.retry(exc=exc, countdown=min(300, 2 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def hl7_messages_requeue_stuck() -> int:
    """Periodic (Celery beat): see results.hl7_messages_requeue_stuck."""
    return results.hl7_messages_requeue_stuck()
