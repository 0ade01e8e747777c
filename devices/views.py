"""Pages where hospital admins keep their devices and the devices' tokens. Thin: scope, check, call a service."""

import copy
from collections.abc import Callable
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from devices import selectors, services
from devices.forms import DETAIL_FIELDS, DeviceCreateForm, DeviceForm, DeviceSearchForm
from devices.models import Device
from hospitals import scoping
from hospitals.audit import Action, Outcome, audit_not_found, audit_record
from hospitals.models import Hospital, User
from hospitals.views import PAGE_SIZE, forbidden


def _forbidden(request: HttpRequest) -> HttpResponse:
    return forbidden(request, _("Only hospital admins manage devices."))


def _access_device(request: HttpRequest, pk: int, action: str) -> Device:
    try:
        return selectors.access_device(scoping.request_scope(request), pk)
    except Http404:
        raise audit_not_found(request, action, "devices.device", pk) from None


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


@require_GET
@login_required
def device_list(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    if not scope.can_manage_devices:
        return _forbidden(request)
    search = DeviceSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    page = Paginator(selectors.device_list(scope=scope, query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "show_hospital": scope.is_platform_admin}
    return render(request, "devices/device_list.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def device_create(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    if not scope.can_manage_devices:
        return _forbidden(request)
    form = DeviceCreateForm(request.POST or None, choose_hospital=scope.is_platform_admin)
    if request.method == "GET":
        return render(request, "devices/device_form.html", {"form": form})
    if form.is_valid():
        data = form.cleaned_data
        hospital = data.get("hospital") or Hospital.objects.get(pk=scope.hospital_id or 0)
        try:
            device = services.device_create(
                hospital=hospital, **{name: data[name] for name in DETAIL_FIELDS}, by=_user(request), request=request
            )
        except ValidationError as error:  # a race the form could not see (the AE title was just taken)
            form.add_error(None, error)
        else:
            messages.success(
                request, _("%(name)s is registered. Issue a token below if it sends results.") % {"name": device.name}
            )
            return redirect("device_detail", pk=device.pk)
    audit_record(
        request=request,
        action=Action.CREATE,
        outcome=Outcome.INVALID,
        object_type="devices.device",
        detail=", ".join(form.errors),
    )
    return render(request, "devices/device_form.html", {"form": form}, status=400)


def _detail(request: HttpRequest, device: Device, form: DeviceForm, status: int = 200) -> HttpResponse:
    tokens = selectors.device_tokens(device=device)
    context = {
        "device": device,
        "form": form,
        "tokens": tokens,
        "has_active_token": any(t.is_active for t in tokens),
        "messages_received": selectors.device_messages(device=device),
    }
    return render(request, "devices/device_detail.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    device = _access_device(request, pk, Action.UPDATE if request.method == "POST" else Action.VIEW)
    # The form checks a copy: the page's heading keeps the saved name while a bad edit is shown for correcting.
    form = DeviceForm(request.POST or None, instance=copy.copy(device))
    if request.method == "GET":
        return _detail(request, device, form)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.device_update(
                device=device, **{name: data[name] for name in DETAIL_FIELDS}, by=_user(request), request=request
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Changes to %(name)s saved.") % {"name": device.name})
            return redirect("device_detail", pk=device.pk)
    audit_record(
        request=request, action=Action.UPDATE, outcome=Outcome.INVALID, obj=device, detail=", ".join(form.errors)
    )
    return _detail(request, device, form, status=400)


@require_POST
@login_required
def device_token_issue(request: HttpRequest, pk: int) -> HttpResponse:
    """Issue a token, or with `rotate` replace the device's tokens by a new one. The token is on this
    response only: no browser or proxy may keep a copy, and the platform keeps only its hash."""
    device = _access_device(request, pk, Action.CREATE)
    rotate = bool(request.POST.get("rotate"))
    issue = services.device_token_rotate if rotate else services.device_token_issue
    token, plain = issue(device=device, by=_user(request), request=request)
    context = {"device": device, "token": token, "plain": plain, "rotated": rotate}
    response = render(request, "devices/device_token_created.html", context, status=201)
    add_never_cache_headers(response)
    return response


@require_POST
@login_required
def device_token_revoke(request: HttpRequest, pk: int, token_pk: int) -> HttpResponse:
    device = _access_device(request, pk, Action.UPDATE)
    try:
        token = selectors.access_device_token(device=device, pk=token_pk)
    except Http404:
        raise audit_not_found(request, Action.UPDATE, "devices.devicetoken", token_pk) from None
    already = token.revoked_at is not None
    services.device_token_revoke(token=token, by=_user(request), request=request)
    if already:
        messages.info(request, _("Token %(token)s was already revoked.") % {"token": token})
    else:
        messages.success(
            request,
            _("Token %(token)s is revoked: the device can no longer send with it.") % {"token": token},
        )
    return redirect("device_detail", pk=device.pk)


def _device_change(request: HttpRequest, pk: int, change: Callable[..., Device], done: str) -> HttpResponse:
    device = _access_device(request, pk, Action.UPDATE)
    change(device=device, by=_user(request), request=request)
    messages.success(request, done % {"name": device.name})
    return redirect("device_detail", pk=device.pk)


@require_POST
@login_required
def device_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _device_change(
        request,
        pk,
        services.device_deactivate,
        _("%(name)s is deactivated: its tokens and AE title are refused until you activate it again."),
    )


@require_POST
@login_required
def device_activate(request: HttpRequest, pk: int) -> HttpResponse:
    return _device_change(
        request, pk, services.device_activate, _("%(name)s is active again: its tokens and AE title work.")
    )
