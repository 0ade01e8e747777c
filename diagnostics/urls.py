"""Imaging pages: uploads and the study list on the patient and consultation pages."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
