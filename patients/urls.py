from django.urls import path

from patients import views

urlpatterns = [
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<int:pk>/consent/", views.consent_record, name="consent_record"),
    path("patients/<int:pk>/consent/<int:consent_id>/scan/", views.consent_scan, name="consent_scan"),
]
