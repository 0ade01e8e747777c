from celery import shared_task

from consultations import services


@shared_task(acks_late=True)
def consultations_mark_overdue() -> int:
    """Periodic (Celery beat, every minute): see services.consultations_mark_overdue."""
    return services.consultations_mark_overdue()
