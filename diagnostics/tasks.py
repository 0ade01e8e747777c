from celery import Task, shared_task
from django.db import DatabaseError
from django.utils.translation import gettext as _

from diagnostics import recordings, services

MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def instance_process(self: Task, instance_id: int) -> bool:
    """One instance through the imaging pipeline; passing trouble (storage, database) is retried with
    backoff, and after the last try the instance shows as failed with the reason."""
    try:
        return services.instance_process(instance_id)
    except (OSError, DatabaseError) as exc:
        if self.request.retries >= MAX_RETRIES:
            services.instance_fail(
                instance_id, _("Gave up after %(tries)s tries: %(reason)s") % {"tries": MAX_RETRIES + 1, "reason": exc}
            )
            return False
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(acks_late=True, reject_on_worker_lost=True)
def instances_queue(instance_ids: list[int]) -> None:
    """Queue the pipeline task of each instance of a batch (see services._queue_all). Run twice, it queues
    them twice, which instance_process shrugs off; lost, the periodic sweep queues them again."""
    for instance_id in instance_ids:
        instance_process.delay(instance_id)


@shared_task(acks_late=True)
def instances_requeue_stuck() -> int:
    """Periodic (Celery beat): see services.instances_requeue_stuck."""
    return services.instances_requeue_stuck()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def upload_store(self: Task, upload_id: int) -> bool:
    """Store the files of a complete browser upload; storage or database trouble is retried with backoff
    (and the periodic sweep queues it again after that)."""
    from diagnostics import uploads

    try:
        return uploads.upload_store(upload_id)
    except (OSError, DatabaseError) as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def uploads_sweep() -> int:
    """Periodic (Celery beat): see uploads.uploads_sweep."""
    from diagnostics import uploads

    return uploads.uploads_sweep()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def recording_process(self: Task, recording_id: int) -> bool:
    """One recording through its pipeline; passing trouble (storage, database) is retried with backoff, and
    after the last try the recording shows as failed with the reason."""
    try:
        return recordings.recording_process(recording_id)
    except (OSError, DatabaseError) as exc:
        if self.request.retries >= MAX_RETRIES:
            recordings.recording_fail(
                recording_id, _("Gave up after %(tries)s tries: %(reason)s") % {"tries": MAX_RETRIES + 1, "reason": exc}
            )
            return False
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def recordings_requeue_stuck() -> int:
    """Periodic (Celery beat): see recordings.recordings_requeue_stuck."""
    return recordings.recordings_requeue_stuck()
