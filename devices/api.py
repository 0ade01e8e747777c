"""The API devices call. Device endpoints live under /api/v1/device/ and take only a device's token."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from devices import services
from devices.auth import DeviceAPIView, device_of


class DeviceHeartbeatView(DeviceAPIView):
    """POST: the device is on and can reach the platform. Answers 204 and sets the device's "last seen"."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.device_seen(device=device_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
