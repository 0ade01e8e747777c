"""Sign-in pages: login, logout, password change, and the TOTP second factor."""

import base64
from typing import Any, cast

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals import services
from hospitals.audit import Action, Outcome, audit_record
from hospitals.forms import OtpTokenForm
from hospitals.models import User


class LoginForm(AuthenticationForm):
    def clean_username(self) -> str:
        # AuthenticationForm shows a max length but does not enforce it; over-long names must not reach
        # the lockout tables (varchar 255) and crash the page.
        username: str = self.cleaned_data["username"]
        if len(username) > User._meta.get_field("username").max_length:  # type: ignore[operator]
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )
        return username


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        audit_record(request=self.request, action=Action.LOGIN)
        return response

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        username = str(form.data.get("username", ""))
        locked = getattr(self.request, "axes_locked_out", False)
        known = form.cleaned_data.get("username")  # present only when it passed the field's checks
        audit_record(
            request=self.request,
            user=User.objects.filter(username=known).first() if known else None,
            action=Action.LOGIN_FAILURE,
            outcome=Outcome.DENIED,
            detail=f"username={username}" + (" locked out" if locked else ""),
        )
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            audit_record(request=request, action=Action.LOGOUT)
        return super().post(request, *args, **kwargs)


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        # Through authenticate(), so wrong guesses here count toward the same lockout as the sign-in page:
        # a borrowed, unlocked session must not become a password-guessing oracle.
        old_password: str = self.cleaned_data["old_password"]
        if authenticate(self.request, username=self.user.get_username(), password=old_password) is None:
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    form_class = PasswordChangeForm
    success_url = "/"

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        user = cast(User, self.request.user)
        services.password_changed(user=user)
        audit_record(request=self.request, action=Action.UPDATE, obj=user, detail="password changed")
        messages.success(self.request, gettext_lazy("Your password was changed."))
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        wrong_password = form.has_error("old_password", "password_incorrect")
        audit_record(
            request=self.request,
            action=Action.UPDATE,
            outcome=Outcome.DENIED if wrong_password else Outcome.INVALID,
            obj=cast(User, self.request.user),
            detail="password change: " + ("wrong current password" if wrong_password else ", ".join(form.errors)),
        )
        return super().form_invalid(form)


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _throttled(device: TOTPDevice) -> str:
    """After a wrong code the device refuses codes for a doubling pause; say so rather than 'wrong'."""
    allowed, info = device.verify_is_allowed()
    if allowed:
        return ""
    seconds = max(1, int(((info or {}).get("locked_until", timezone.now()) - timezone.now()).total_seconds()) + 1)
    return _("Too many wrong codes. Wait %(seconds)s seconds, then enter the code shown at that time.") % {
        "seconds": seconds
    }


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@never_cache  # the page shows the authenticator's secret key
@require_http_methods(["GET", "POST"])
@login_required
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the key), then confirm with one code."""
    user: User = request.user  # type: ignore[assignment]
    if request.user.is_verified():  # type: ignore[union-attr]
        return redirect(_next_url(request))
    if user.totpdevice_set.filter(confirmed=True).exists():  # type: ignore[attr-defined]
        # Replacing an existing authenticator needs the admin's reset, not just a signed-in password.
        return redirect(f"{reverse('accounts:otp_verify')}?{urlencode({'next': _next_url(request)})}")
    device = services.second_factor_device_for(user=user)
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = _throttled(device)
        if not wait and device.verify_token(form.cleaned_data["token"]):
            services.second_factor_confirm(device=device)
            otp_login(request, device)
            audit_record(request=request, action=Action.UPDATE, obj=user, detail="second factor enrolled")
            messages.success(request, _("Your authenticator is set up."))
            return HttpResponseRedirect(_next_url(request))
        form.add_error(
            "token", wait or _("That code is not right. Check the time on your phone and try the current code.")
        )
    if request.method == "POST":
        audit_record(request=request, action=Action.LOGIN_FAILURE, outcome=Outcome.DENIED, detail="enrolment code")
    secret = base64.b32encode(device.bin_key).decode()
    context = {"form": form, "qr_svg": _qr_svg(device.config_url), "secret": secret, "next": _next_url(request)}
    return render(request, "accounts/otp_setup.html", context, status=400 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Ask for the current code of the confirmed authenticator."""
    if request.user.is_verified():  # type: ignore[union-attr]
        return redirect(_next_url(request))
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        enrolled = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
        wait = _throttled(enrolled) if enrolled else ""
        device = None if wait else match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            audit_record(request=request, action=Action.LOGIN, detail="second factor")
            return HttpResponseRedirect(_next_url(request))
        form.add_error("token", wait or _("That code is not right or has expired. Enter the code shown now."))
    if request.method == "POST":
        audit_record(request=request, action=Action.LOGIN_FAILURE, outcome=Outcome.DENIED, detail="second factor")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/otp_verify.html", {"form": form, "next": _next_url(request)}, status=status)


def lockout(request: HttpRequest, credentials: Any, *args: Any, **kwargs: Any) -> HttpResponse:
    """Axes' answer to a locked (username, address) pair: a page saying when to try again."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "accounts/locked_out.html", {"cooloff_minutes": minutes}, status=429)
