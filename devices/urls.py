from django.urls import path

from devices import api, views

urlpatterns = [
    path("devices/", views.device_list, name="device_list"),
    path("devices/new/", views.device_create, name="device_create"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path("devices/<int:pk>/tokens/", views.device_token_issue, name="device_token_issue"),
    path("devices/<int:pk>/tokens/<int:token_pk>/revoke/", views.device_token_revoke, name="device_token_revoke"),
    path("devices/<int:pk>/deactivate/", views.device_deactivate, name="device_deactivate"),
    path("devices/<int:pk>/activate/", views.device_activate, name="device_activate"),
    # The API devices call: a device token only (devices.auth).
    path("api/v1/device/heartbeat", api.DeviceHeartbeatView.as_view(), name="device_heartbeat"),
    path("api/v1/device/hl7", api.Hl7View.as_view(), name="device_hl7"),
    path("api/v1/device/readings", api.ReadingsView.as_view(), name="device_readings"),
    path("api/v1/device/fhir/Observation", api.FhirObservationView.as_view(), name="device_fhir_observation"),
]
