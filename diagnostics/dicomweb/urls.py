"""DICOMweb: STOW-RS, QIDO-RS and WADO-RS under /dicom-web/ (PS3.18 resource paths, UIDs in the path)."""

from django.urls import path

from diagnostics.dicomweb import views
from diagnostics.dicomweb.qido import INSTANCE, SERIES, STUDY

app_name = "dicomweb"

_STUDY = "studies/<str:study>"
_SERIES = f"{_STUDY}/series/<str:series>"
_INSTANCE = f"{_SERIES}/instances/<str:instance>"

urlpatterns = [
    path("studies", views.Studies.as_view(level=STUDY), name="studies"),
    path("series", views.Search.as_view(level=SERIES), name="series_search"),
    path("instances", views.Search.as_view(level=INSTANCE), name="instance_search"),
    path(_STUDY, views.Retrieve.as_view(), name="study"),
    path(f"{_STUDY}/metadata", views.Metadata.as_view(), name="study_metadata"),
    path(f"{_STUDY}/series", views.Search.as_view(level=SERIES), name="study_series"),
    path(f"{_STUDY}/instances", views.Search.as_view(level=INSTANCE), name="study_instances"),
    path(_SERIES, views.Retrieve.as_view(), name="series"),
    path(f"{_SERIES}/metadata", views.Metadata.as_view(), name="series_metadata"),
    path(f"{_SERIES}/instances", views.Search.as_view(level=INSTANCE), name="series_instances"),
    path(_INSTANCE, views.Retrieve.as_view(), name="instance"),
    path(f"{_INSTANCE}/metadata", views.Metadata.as_view(), name="instance_metadata"),
    path(f"{_INSTANCE}/rendered", views.Rendered.as_view(), name="instance_rendered"),
    path(f"{_INSTANCE}/frames/<str:frames>", views.Frames.as_view(), name="frames"),
    path(f"{_INSTANCE}/frames/<str:frames>/rendered", views.Rendered.as_view(), name="frames_rendered"),
]
