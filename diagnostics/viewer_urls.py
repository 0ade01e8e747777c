"""The image viewer and the de-identified export."""

from django.urls import path  # noqa: F401

urlpatterns: list = []  # type: ignore[type-arg]
