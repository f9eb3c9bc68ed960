"""The example's own test suite. CI runs it through rwproxy against a real primary with two
replicas; nothing here knows about the proxy."""
import datetime
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.test import Client, TestCase, TransactionTestCase
from django.utils import timezone

from .models import Author, Note, Tag


class OrmTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ann = Author.objects.create(name="ann")
        cls.bob = Author.objects.create(name="bob")

    def test_foreign_keys_joins_and_aggregates(self):
        Note.objects.create(author=self.ann, title="a1")
        Note.objects.create(author=self.ann, title="a2")
        Note.objects.create(author=self.bob, title="b1")
        self.assertEqual(Note.objects.filter(author__name="ann").count(), 2)
        titles = list(Note.objects.select_related("author").order_by("title").values_list("author__name", "title"))
        self.assertEqual(titles, [("ann", "a1"), ("ann", "a2"), ("bob", "b1")])
        self.assertEqual(Author.objects.filter(notes__title__startswith="b").get(), self.bob)

    def test_bulk_create(self):
        Note.objects.bulk_create([Note(author=self.ann, title=f"n{i}") for i in range(250)])
        self.assertEqual(Note.objects.filter(title__startswith="n").count(), 250)

    def test_update_or_create(self):
        note, created = Note.objects.update_or_create(author=self.bob, title="u", defaults={"body": "one"})
        self.assertTrue(created)
        again, created = Note.objects.update_or_create(author=self.bob, title="u", defaults={"body": "two"})
        self.assertFalse(created)
        self.assertEqual(again.pk, note.pk)
        self.assertEqual(Note.objects.get(pk=note.pk).body, "two")

    def test_select_for_update_variants(self):
        note = Note.objects.create(author=self.ann, title="locked")
        with transaction.atomic():
            locked = Note.objects.select_for_update().get(pk=note.pk)
            locked.version += 1
            locked.save()
            self.assertEqual(len(Note.objects.select_for_update(skip_locked=True).filter(pk=note.pk)), 1)
            self.assertEqual(len(Note.objects.select_for_update(nowait=True).filter(pk=note.pk)), 1)
        self.assertEqual(Note.objects.get(pk=note.pk).version, 1)

    def test_savepoints_roll_back_only_the_inner_block(self):
        with transaction.atomic():
            Author.objects.create(name="outer")
            try:
                with transaction.atomic():
                    Author.objects.create(name="inner")
                    Author.objects.create(name="ann")  # duplicate: IntegrityError
            except IntegrityError:
                pass
            Author.objects.create(name="after")
        names = set(Author.objects.values_list("name", flat=True))
        self.assertIn("outer", names)
        self.assertIn("after", names)
        self.assertNotIn("inner", names)

    def test_timezone_aware_datetimes(self):
        when = datetime.datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("UTC"))
        note = Note.objects.create(author=self.ann, title="tz", created=when)
        stored = Note.objects.get(pk=note.pk).created
        self.assertEqual(stored, when)
        self.assertTrue(timezone.is_aware(stored))
        # Range filters need no server time-zone tables (created__date would use CONVERT_TZ).
        window = (when - datetime.timedelta(seconds=1), when + datetime.timedelta(seconds=1))
        self.assertEqual(Note.objects.filter(created__range=window, title="tz").count(), 1)
        self.assertEqual(timezone.localtime(stored).utcoffset(), datetime.timedelta(hours=2))

    def test_many_to_many(self):
        note = Note.objects.create(author=self.ann, title="tagged")
        note.tags.add(Tag.objects.create(name="x"), Tag.objects.create(name="y"))
        self.assertEqual(sorted(note.tags.values_list("name", flat=True)), ["x", "y"])
        self.assertEqual(Tag.objects.filter(note__title="tagged").count(), 2)


class AutocommitTests(TransactionTestCase):
    """Real commits: writes go to the primary, reads may go to replicas."""

    def test_read_your_own_writes(self):
        author = Author.objects.create(name="carol")
        for i in range(20):
            note = Note.objects.create(author=author, title=f"c{i}")
            self.assertEqual(Note.objects.get(pk=note.pk).title, f"c{i}")
        self.assertEqual(author.notes.count(), 20)

    def test_rollback_leaves_nothing(self):
        try:
            with transaction.atomic():
                Author.objects.create(name="ghost")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        self.assertFalse(Author.objects.filter(name="ghost").exists())

    def test_connection_state_holds(self):
        with connection.cursor() as c:
            for _ in range(20):
                c.execute("SELECT @@sql_mode, @@tx_isolation, @@character_set_client")
                sql_mode, isolation, charset = c.fetchone()
                self.assertEqual(sql_mode, "STRICT_TRANS_TABLES")
                self.assertEqual(isolation, "READ-COMMITTED")
                self.assertEqual(charset, "utf8mb4")

    def test_update_counts_matched_rows(self):
        author = Author.objects.create(name="dave")
        # Django connects with CLIENT_FOUND_ROWS: an UPDATE that changes nothing still counts.
        self.assertEqual(Author.objects.filter(pk=author.pk).update(name="dave"), 1)


class RequestTests(TransactionTestCase):
    """What a browser does: POST, follow the redirect, GET. Each request ends with its
    connection closed (CONN_MAX_AGE = 0), so every step reads on a new connection."""

    def request(self, method, url, **data):
        response = getattr(Client(), method)(url, data)
        connection.close()
        return response

    def test_post_redirect_get_sees_every_write(self):
        for i in range(30):
            created = self.request("post", "/notes/", author="erin", title=f"e{i}")
            self.assertEqual(created.status_code, 302)
            shown = self.request("get", created["Location"])
            self.assertEqual(shown.status_code, 200, f"note {i} just created is missing")
            self.assertEqual(shown.content.decode(), f"e{i} v0")
            edited = self.request("post", created["Location"] + "edit/", title=f"E{i}")
            self.assertEqual(self.request("get", edited["Location"]).content.decode(), f"E{i} v1")
            self.assertEqual(self.request("get", "/authors/erin/count/").content.decode(), str(i + 1))
        gone = self.request("post", created["Location"] + "delete/")
        self.assertEqual(self.request("get", gone["Location"]).status_code, 404, "a deleted note is gone")

    def test_a_new_connection_sees_schema_changes(self):
        with connection.cursor() as c:
            c.execute("CREATE TABLE notes_scratch (id INT PRIMARY KEY)")
        connection.close()
        with connection.cursor() as c:
            c.execute("SHOW TABLES LIKE 'notes_scratch'")
            self.assertEqual(len(c.fetchall()), 1, "a table just created is listed")
            c.execute("DROP TABLE notes_scratch")
        connection.close()
        with connection.cursor() as c:
            c.execute("SHOW TABLES LIKE 'notes_scratch'")
            self.assertEqual(c.fetchall(), (), "a table just dropped is not listed")
