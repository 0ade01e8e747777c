"""The REST API (version 1) and its OpenAPI schema and docs, all served by the app."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from consultations.api import ConsultationViewSet
from hospitals.api import TokenCreateView, TokenRevokeView
from patients.api import PatientViewSet

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("consultations", ConsultationViewSet, basename="consultation")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/tokens/", TokenCreateView.as_view(), name="api_token_create"),
    path("v1/tokens/revoke/", TokenRevokeView.as_view(), name="api_token_revoke"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves Swagger UI's start-up script from a URL of its own rather than inline (CSP).
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api_schema", template_name="api/swagger_ui.html"),
        name="api_docs",
    ),
]
