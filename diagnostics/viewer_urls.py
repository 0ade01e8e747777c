"""The image viewer and the de-identified export."""

from django.urls import path

from diagnostics import viewer

app_name = "viewer"

urlpatterns = [
    path("imaging/studies/<int:pk>/viewer/", viewer.viewer, name="study"),
    path("imaging/studies/<int:pk>/viewer/export/", viewer.export, name="export"),
    path("imaging/series/<int:pk>/viewer/", viewer.series_data, name="series"),
    path("imaging/series/<int:pk>/viewer/thumbnail.jpg", viewer.series_thumbnail, name="series_thumbnail"),
    path("imaging/instances/<int:pk>/viewer/frames/<int:frame>.jpg", viewer.frame_jpeg, name="frame_jpeg"),
    path("imaging/instances/<int:pk>/viewer/frames/<int:frame>.bin", viewer.frame_raw, name="frame_raw"),
]
