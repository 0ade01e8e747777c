"""Imaging pages: uploads and the study list on the patient and consultation pages."""

from django.urls import path  # noqa: F401

urlpatterns: list = []  # type: ignore[type-arg]
