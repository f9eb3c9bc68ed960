"""A few request handlers so the tests can do what a browser does: POST, follow the redirect,
GET what was just written (each request on its own connection with CONN_MAX_AGE = 0)."""
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect

from .models import Author, Note


def create(request):
    author, _ = Author.objects.get_or_create(name=request.POST["author"])
    note = Note.objects.create(author=author, title=request.POST["title"])
    return redirect("note", pk=note.pk)


def detail(request, pk):
    note = get_object_or_404(Note, pk=pk)
    return HttpResponse(f"{note.title} v{note.version}")


def edit(request, pk):
    note = get_object_or_404(Note, pk=pk)
    note.title = request.POST["title"]
    note.version += 1
    note.save()
    return redirect("note", pk=note.pk)


def delete(request, pk):
    Note.objects.filter(pk=pk).delete()
    return redirect("note", pk=pk)


def count(request, author):
    return HttpResponse(str(Note.objects.filter(author__name=author).count()))
