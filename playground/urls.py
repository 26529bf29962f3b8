from django.urls import path

from patterns.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("patterns/<slug:slug>/", views.pattern_page, name="pattern"),
    path("patterns/<slug:slug>/events.jsonl", views.events, name="events"),
    path("patterns/<slug:slug>/describe.json", views.describe, name="describe"),
]
