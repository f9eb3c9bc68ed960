"""Settings for the example: Django talks to rwproxy exactly as it would to MySQL/MariaDB.

Only DB_HOST/DB_PORT point at the proxy; everything else is a normal production-style setup
(utf8mb4, strict mode, READ COMMITTED, timezone-aware datetimes, Django's default
CONN_MAX_AGE = 0: a new connection per request).
"""
import os

SECRET_KEY = "example-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Warsaw"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "notes"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "notesite.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DB_PORT", "6033"),
        "NAME": os.environ.get("DB_NAME", "rwtest"),
        "USER": os.environ.get("DB_USER", "app"),
        "PASSWORD": os.environ.get("DB_PASSWORD", "app"),
        # Django's default (a connection per request); DB_CONN_MAX_AGE=60 for persistent ones.
        "CONN_MAX_AGE": int(os.environ.get("DB_CONN_MAX_AGE", "0")),
        "OPTIONS": {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            "isolation_level": "read committed",
        },
        "TEST": {"NAME": os.environ.get("DB_TEST_NAME", "test_rwproxy_example")},
    }
}
