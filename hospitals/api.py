"""API endpoints of hospitals/: API tokens for integrations."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from knox.views import LoginView as KnoxLoginView
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response

from hospitals.api_rules import SignedInWithSecondFactor
from hospitals.audit import Action, audit_record
from hospitals.tokens import TokenAuthentication


class _TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as 'Authorization: Token <token>'. Shown only now.")
    expiry = serializers.DateTimeField()


@extend_schema_view(post=extend_schema(request=None, responses=_TokenSerializer))
class TokenCreateView(KnoxLoginView):
    """POST with a signed-in (and second-factor-confirmed) browser session: a new API token, shown once."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [SignedInWithSecondFactor]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # A method this view does not have is 405 for anyone, before the session is asked for.
        if request.method not in self.allowed_methods:
            raise MethodNotAllowed(request.method or "")
        super().initial(request, *args, **kwargs)

    def post(self, request: Request, format: Any = None) -> Response:
        response = super().post(request, format=format)
        audit_record(request=request._request, user=request.user, action=Action.CREATE, object_type="knox.token")
        return response


@extend_schema_view(post=extend_schema(request=None, responses={204: None}))
class TokenRevokeView(KnoxLogoutView):
    """POST with the token to revoke it."""

    authentication_classes = [TokenAuthentication]
