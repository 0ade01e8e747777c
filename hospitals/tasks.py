from celery import shared_task

from hospitals import tokens


@shared_task(acks_late=True)
def api_tokens_sweep() -> int:
    """Periodic (Celery beat, hourly): see tokens.tokens_expired_delete."""
    return tokens.tokens_expired_delete()
