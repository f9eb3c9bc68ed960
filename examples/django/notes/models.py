from django.db import models
from django.utils import timezone


class Author(models.Model):
    name = models.CharField(max_length=100, unique=True)
    joined = models.DateTimeField(default=timezone.now)


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)


class Note(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="notes")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True)
    created = models.DateTimeField(default=timezone.now)
    version = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["created"])]
