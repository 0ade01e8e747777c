"""Celery tasks of the devices' ways in: thin, by id, safe to run twice."""

from celery import Task, shared_task
from django.db import DatabaseError

from devices import results

MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def hl7_message_process(self: Task, message_id: int) -> bool:
    """Store the results of one queued HL7 message; database trouble is retried with backoff, and after the
    last try the message stays queued for the periodic sweep."""
    try:
        return results.hl7_message_process(message_id)
    except DatabaseError as exc:
        if self.request.retries >= MAX_RETRIES:
            return False
        raise self.retry(exc=exc, countdown=min(300, 2 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def hl7_messages_requeue_stuck() -> int:
    """Periodic (Celery beat): see results.hl7_messages_requeue_stuck."""
    return results.hl7_messages_requeue_stuck()
