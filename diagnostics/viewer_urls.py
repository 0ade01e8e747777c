"""The image viewer and the de-identified export."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
