from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from mhospital.health import healthz

admin.site.site_header = "M-Hospital"
handler404 = "hospitals.views.not_found"
# The Django admin is the platform admins' (superusers') tool only; no other flag opens it.
admin.site.has_permission = lambda request: request.user.is_active and request.user.is_superuser  # type: ignore[method-assign]

urlpatterns = [
    # Everyone signs in through one audited, rate-limited page, admins included.
    path("admin/login/", RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("api/", include("mhospital.api_urls")),
    path("", include("hospitals.urls")),
    path("", include("patients.urls")),
    path("", include("consultations.urls")),
    path("", include("diagnostics.urls")),
    path("", include("diagnostics.viewer_urls")),
    path("", include("diagnostics.ai_urls")),
    path("", include("devices.urls")),
    path("dicom-web/", include("diagnostics.dicomweb.urls")),
    path("fhir/", include("interop.urls")),
]
