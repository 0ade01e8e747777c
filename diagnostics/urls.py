"""Imaging pages: uploads and the study list on the patient and consultation pages."""

from django.urls import path

from diagnostics import alert_views, views

app_name = "diagnostics"

urlpatterns = [
    path("imaging/patients/<int:pk>/", views.patient_imaging, name="patient_imaging"),
    path("imaging/patients/<int:pk>/uploads/", views.upload_create, name="upload_create"),
    path("imaging/uploads/<int:pk>/", views.upload_state, name="upload"),
    path("imaging/instances/<int:pk>/thumbnail.jpg", views.instance_thumbnail, name="instance_thumbnail"),
    path("imaging/instances/<int:pk>/retry/", views.instance_retry, name="instance_retry"),
]

# Critical result alerts: the banner on every page of a clinician or specialist (diagnostics/alert_views.py).
urlpatterns += [
    path("labs/alerts/", alert_views.lab_alert_list, name="lab_alerts"),
    path("labs/alerts/<int:pk>/acknowledge/", alert_views.lab_alert_ack, name="lab_alert_ack"),
]
