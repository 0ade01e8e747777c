"""Settings come from the environment: embedded defaults, real services, and a production mode that refuses to guess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")
PROBE = (
    "import json, django; from django.conf import settings as s; django.setup(); print(json.dumps({"
    "'db': s.DATABASES['default']['ENGINE'],"
    "'db_init': s.DATABASES['default'].get('OPTIONS', {}).get('init_command', ''),"
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'broker': s.CELERY_BROKER_URL,"
    "'cache': s.CACHES['default']['BACKEND'], 'media': str(s.MEDIA_ROOT)}))"
)


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    clean.update({"MHOSPITAL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "mhospital.settings", **env})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120, check=False
    )


def test_with_no_variables_everything_is_embedded(tmp_path: Path) -> None:
    result = _run(["-c", PROBE], tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["db"] == "django.db.backends.sqlite3" and "journal_mode=WAL" in found["db_init"]
    assert found["layer"] == "mhospital.channel_layers.SweptInMemoryChannelLayer"
    assert found["broker"] == "filesystem://"
    assert found["media"] == str(tmp_path / "media")


def test_service_urls_switch_to_postgresql_and_redis(tmp_path: Path) -> None:
    result = _run(
        ["-c", PROBE], tmp_path, DATABASE_URL="postgres://u@db.internal:5432/mh", REDIS_URL="redis://cache:6379/0"
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["db"] == "django.db.backends.postgresql"
    assert found["layer"] == "mhospital.channel_layers.InboxPubSubChannelLayer"
    assert found["broker"] == "redis://cache:6379/0"
    assert found["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_the_core_channel_layer_is_a_choice_with_its_pool_bounded(tmp_path: Path) -> None:
    result = _run(["-c", PROBE], tmp_path, REDIS_URL="redis://cache:6379/0", CHANNELS_LAYER="core")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layer"] == "mhospital.channel_layers.PooledRedisChannelLayer"


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "k" * 60}, "ALLOWED_HOSTS"),
        ({"SECRET_KEY": "k" * 60, "ALLOWED_HOSTS": "mh.example.ru", "DEBUG": "1"}, "DEBUG must be off"),
    ],
)
def test_production_refuses_to_start_misconfigured(env: dict[str, str], complaint: str, tmp_path: Path) -> None:
    result = _run(["manage.py", "check"], tmp_path, DJANGO_ENV="production", **env)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_production_passes_the_deployment_checklist(tmp_path: Path) -> None:
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        DJANGO_ENV="production",
        SECRET_KEY="Zq8#kLm2$vP9wXr4tYb7nC1dF6gH3jK5sA0eU8iO2pL4mN7qR9tV1xZ3cB6vN8mQ",
        ALLOWED_HOSTS="mh.example.ru",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_under_asgi_a_page_is_made_in_one_trip_to_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each move between the event loop and a thread costs about 0.12 ms of CPU, and Django's own ASGI
    handler makes several per request (mhospital/asgi_http.py): the request_started signal, the middleware
    and view, the response's close. The page must come whole from one move."""
    from asgiref.sync import SyncToAsync
    from channels.testing import HttpCommunicator

    from mhospital.asgi import application

    moved: list[str] = []
    original = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args: object, **kwargs: object) -> object:  # type: ignore[type-arg]
        moved.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    page = HttpCommunicator(application, "GET", "/accounts/login/", headers=[(b"host", b"testserver")])
    response = await page.get_response()

    assert response["status"] == 200 and b"password" in response["body"]
    assert moved == ["OneTripASGIHandler._respond"]
