"""API tokens for integrations (django-rest-knox), checked without knox's per-request housekeeping."""

import binascii
from hmac import compare_digest
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from hospitals.scoping import request_membership_found


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox's check of "Authorization: Token <key>", less the sweep it runs on every request: knox reads all of
    the user's tokens to delete the expired ones, a query per API call that grows with the user's tokens (a
    machine client that signs in often holds many). Here a request looks at its own token only, refused and
    deleted once expired as in knox; `tokens_expired_delete`, run by the beat, removes the others.

    The token's query also brings the user's membership and hospital, which every API request asks for
    next (the scope of what it may see): one query fewer per request."""

    def authenticate(self, request: Request) -> tuple[Any, AuthToken] | None:
        found = super().authenticate(request)
        if found is not None:
            user = found[0]
            staff = getattr(user, "staff", None)  # fetched with the token; None when the user has none
            request_membership_found(request._request, user, staff)
        return found

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        """Knox's check of the key against the stored digests, the tokens read with the user's membership."""
        refused = AuthenticationFailed(_("Invalid token."))
        try:
            key = token.decode("utf-8")
        except UnicodeDecodeError:
            raise refused from None
        found = AuthToken.objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related(
            "user__staff__hospital"
        )
        for auth_token in found:
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error):
                raise refused from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise refused

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True


class TokenScheme(KnoxTokenScheme):
    """The schema's description of these tokens: knox's ("knoxApiToken")."""

    target_class = "hospitals.tokens.TokenAuthentication"


def tokens_expired_delete() -> int:
    """Delete every expired API token; returns how many."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted
