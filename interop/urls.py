from django.urls import path

from interop import views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    path("<str:type_name>", views.type_view, name="type"),
    path("<str:type_name>/<str:pk>", views.ReadView.as_view(), name="read"),
]
