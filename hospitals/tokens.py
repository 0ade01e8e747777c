"""API tokens for integrations (django-rest-knox), checked without knox's per-request housekeeping."""

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken
from knox.signals import token_expired


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox's check of "Authorization: Token <key>", less the sweep it runs on every request: knox reads all of
    the user's tokens to delete the expired ones, a query per API call that grows with the user's tokens (a
    machine client that signs in often holds many). Here a request looks at its own token only, refused and
    deleted once expired as in knox; `tokens_expired_delete`, run by the beat, removes the others."""

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
