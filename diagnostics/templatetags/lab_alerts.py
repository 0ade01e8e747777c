"""`{% lab_alerts_banner %}`: the critical results banner, rendered with the page (base.html)."""

from typing import Any

from django import template

from diagnostics.alert_views import banner_context, banner_shown

register = template.Library()


@register.inclusion_tag("diagnostics/_lab_alerts.html", takes_context=True)
def lab_alerts_banner(context: template.Context) -> dict[str, Any]:
    """The open alerts of a clinician's or specialist's side; nothing for anyone else."""
    request = context.get("request")
    if request is None or not banner_shown(request):
        return {"banner_off": True}
    return banner_context(request, back=request.get_full_path())
