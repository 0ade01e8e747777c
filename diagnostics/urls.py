"""Imaging pages (uploads and the study list on the patient and consultation pages) and recording pages."""

from django.urls import path

from diagnostics import recording_views, views

app_name = "diagnostics"

urlpatterns = [
    path("imaging/patients/<int:pk>/", views.patient_imaging, name="patient_imaging"),
    path("imaging/patients/<int:pk>/uploads/", views.upload_create, name="upload_create"),
    path("imaging/uploads/<int:pk>/", views.upload_state, name="upload"),
    path("imaging/instances/<int:pk>/thumbnail.jpg", views.instance_thumbnail, name="instance_thumbnail"),
    path("imaging/instances/<int:pk>/retry/", views.instance_retry, name="instance_retry"),
    path("recordings/patients/<int:pk>/", recording_views.patient_recordings, name="patient_recordings"),
    path("recordings/patients/<int:pk>/upload/", recording_views.recording_upload, name="recording_upload"),
    path("recordings/<int:pk>/file", recording_views.recording_file, name="recording_file"),
    path("recordings/<int:pk>/<slug:picture>.png", recording_views.recording_picture, name="recording_picture"),
    path("recordings/<int:pk>/retry/", recording_views.recording_retry, name="recording_retry"),
]
