"""AI readings in the viewer: the specialist's decision on a finding, a reading's heat map, and the decisions
of one model as CSV for its evaluation (platform admins). Reads start from the patient scope; anything
outside it is a 404 like a missing record."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from diagnostics import ai
from diagnostics.models import AIFinding, AIModel, AIReading
from diagnostics.selectors import instances_visible
from hospitals.audit import Action, audit_not_found, audit_record
from hospitals.models import Staff, User
from hospitals.scoping import access_record, request_scope
from hospitals.views import forbidden


def _finding(request: HttpRequest, pk: int) -> AIFinding:
    visible = AIFinding.objects.filter(reading__instance__in=instances_visible(request_scope(request)).values("pk"))
    try:
        return access_record(visible.select_related("reading__model", "reading__instance__series__study"), pk)
    except Http404:
        raise audit_not_found(request, Action.UPDATE, "diagnostics.aifinding", pk) from None


@require_POST
@login_required
def finding_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm or reject one finding of an AI reading: specialists only, since they read the images."""
    finding = _finding(request, pk)
    if request_scope(request).role != Staff.Role.SPECIALIST:
        return forbidden(request, _("A specialist confirms or rejects the AI's findings."))
    user = request.user
    assert isinstance(user, User)
    try:
        ai.finding_decide(finding=finding, decision=request.POST.get("decision", ""), by=user, request=request)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400, content_type="text/plain; charset=utf-8")
    if getattr(request, "htmx", None):
        return render(request, "diagnostics/_ai_finding.html", {"finding": finding, "can_decide": True})
    messages.success(request, _("Your decision on “%(label)s” is recorded.") % {"label": finding.label})
    study = finding.reading.instance.series.study
    return redirect(reverse("viewer:study", args=[study.pk]) + f"?series={finding.reading.instance.series_id}")


@require_GET
@login_required
def reading_heatmap(request: HttpRequest, pk: int) -> HttpResponse:
    """A reading's heat map, a transparent PNG the viewer lays over the image."""
    visible = AIReading.objects.filter(instance__in=instances_visible(request_scope(request)).values("pk"))
    try:
        reading = access_record(visible, pk)
    except Http404:
        raise audit_not_found(request, Action.VIEW, "diagnostics.aireading", pk) from None
    if not reading.heatmap:
        raise Http404
    try:
        with default_storage.open(reading.heatmap, "rb") as stored:
            response = HttpResponse(stored.read(), content_type="image/png")
    except OSError:
        raise Http404 from None
    patch_cache_control(response, private=True, max_age=3600)
    return response


@require_GET
@login_required
def decisions_csv(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Every finding of one model with the specialists' decisions, for evaluating the model."""
    if not request_scope(request).is_platform_admin:
        return forbidden(request, _("The AI models' decisions are exported by platform admins."))
    model = get_object_or_404(AIModel, pk=pk)
    audit_record(request=request, action=Action.EXPORT, obj=model, detail=f"AI decisions CSV of {model}")
    response = StreamingHttpResponse(ai.decisions_csv(model), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ai-decisions-model-{model.pk}.csv"'
    patch_cache_control(response, private=True, no_store=True)
    return response
