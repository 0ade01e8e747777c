"""WebSocket routes of every app."""

from django.urls import path

from hospitals.consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
]
