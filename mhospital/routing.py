"""WebSocket routes of every app."""

from django.urls import path

from consultations.consumers import CallConsumer
from hospitals.consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/consultations/<int:pk>/call/", CallConsumer.as_asgi()),
]
