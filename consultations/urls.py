from django.urls import path

from consultations import views

urlpatterns = [
    path("consultations/", views.consultation_list, name="consultation_list"),
    path("consultations/new/", views.consultation_create, name="consultation_create"),
    path("consultations/<int:pk>/", views.consultation_detail, name="consultation_detail"),
    path("consultations/<int:pk>/messages/", views.message_post, name="consultation_message"),
    path("consultations/<int:pk>/conclusion/", views.conclusion_sign, name="consultation_conclusion"),
    path(
        "consultations/<int:pk>/messages/<int:message_id>/attachment/",
        views.message_attachment,
        name="consultation_attachment",
    ),
    path(
        "consultations/<int:pk>/conclusion/<int:version>.pdf",
        views.conclusion_download,
        name="consultation_conclusion_pdf",
    ),
    path("consultations/<int:pk>/imaging/", views.consultation_imaging, name="consultation_imaging"),
    path(
        "consultations/<int:pk>/imaging/attach/",
        views.consultation_studies_attach,
        name="consultation_studies_attach",
    ),
    path("consultations/<int:pk>/call/", views.consultation_call, name="consultation_call"),
    path("consultations/<int:pk>/call/decline/", views.call_decline, name="consultation_call_decline"),
    path("consultations/<int:pk>/call/guests/", views.call_guest_invite, name="consultation_call_guests"),
    path("consultations/<int:pk>/<slug:move>/", views.consultation_move, name="consultation_move"),
]
