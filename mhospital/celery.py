"""The Celery app, configured from Django settings (CELERY_* names)."""

import os
from typing import Any

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")

app = Celery("mhospital")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Heartbeat(bootsteps.StartStopStep):
    """Write a heartbeat to the shared cache so /healthz can tell a live worker from a dead one."""

    requires = ("celery.worker.components:Timer",)

    def start(self, worker: Any) -> None:
        from django.conf import settings

        from mhospital.health import worker_heartbeat_write

        worker_heartbeat_write(worker.hostname)
        self.tref = worker.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_SECONDS, worker_heartbeat_write, (worker.hostname,), priority=10
        )

    def stop(self, worker: Any) -> None:
        if getattr(self, "tref", None) is not None:
            self.tref.cancel()


app.steps["worker"].add(Heartbeat)
