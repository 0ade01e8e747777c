"""Pages of a patient's results: imaging (uploads, the study list), recordings and lab results."""

from django.urls import path

from diagnostics import alert_views, lab_views, recording_views, views

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
    # Lab results: the card of the patient and consultation pages, entry by hand, CSV import, the review queue.
    path("labs/patients/<int:pk>/", lab_views.patient_labs, name="patient_labs"),
    path("labs/patients/<int:pk>/new/", lab_views.patient_lab_entry, name="patient_lab_entry"),
    path("labs/patients/<int:pk>/import/", lab_views.patient_lab_import, name="patient_lab_import"),
    path("labs/import/", lab_views.lab_import_page, name="lab_import"),
    path("labs/import/sample.csv", lab_views.lab_import_sample, name="lab_import_sample"),
    path("labs/review/", lab_views.lab_review, name="lab_review"),
    path("labs/review/count/", lab_views.lab_review_count, name="lab_review_count"),
    path("labs/review/<int:pk>/assign/", lab_views.lab_review_assign, name="lab_review_assign"),
    path("labs/review/<int:pk>/keep/", lab_views.lab_review_keep, name="lab_review_keep"),
]

# Critical result alerts: the banner on every page of a clinician or specialist (diagnostics/alert_views.py).
urlpatterns += [
    path("labs/alerts/", alert_views.lab_alert_list, name="lab_alerts"),
    path("labs/alerts/<int:pk>/acknowledge/", alert_views.lab_alert_ack, name="lab_alert_ack"),
]
