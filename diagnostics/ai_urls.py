"""AI readings: decisions on findings, heat maps, and the decisions export."""

from django.urls import path

from diagnostics import ai_views

app_name = "ai"

urlpatterns = [
    path("imaging/ai/findings/<int:pk>/decision/", ai_views.finding_decide, name="finding_decide"),
    path("imaging/ai/readings/<int:pk>/heatmap.png", ai_views.reading_heatmap, name="heatmap"),
    path("imaging/ai/models/<int:pk>/decisions.csv", ai_views.decisions_csv, name="decisions_csv"),
]
