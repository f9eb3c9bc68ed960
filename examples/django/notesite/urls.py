from django.urls import path

from notes import views

urlpatterns = [
    path("notes/", views.create, name="create"),
    path("notes/<int:pk>/", views.detail, name="note"),
    path("notes/<int:pk>/edit/", views.edit, name="edit"),
    path("notes/<int:pk>/delete/", views.delete, name="delete"),
    path("authors/<str:author>/count/", views.count, name="count"),
]
