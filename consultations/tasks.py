from celery import shared_task

from consultations import calls, services


@shared_task(acks_late=True)
def consultations_mark_overdue() -> int:
    """Periodic (Celery beat, every minute): see services.consultations_mark_overdue."""
    return services.consultations_mark_overdue()


@shared_task(acks_late=True)
def calls_sweep() -> int:
    """Periodic (Celery beat, every 30 s): see calls.calls_sweep."""
    return calls.calls_sweep()
