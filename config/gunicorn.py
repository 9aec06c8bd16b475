"""gunicorn settings (``gunicorn config.wsgi -c python:config.gunicorn``): the port
and worker count from the environment, and gunicorn's own log lines in the same
format as the app's (LOG_FORMAT, JSON by default), so the stream stays one format.
No access log: the app writes one line per request itself, naming the route rather
than the raw path (tokens in URLs stay out of the logs)."""
import os

# Keep database connections for a minute (config/settings.py): sync workers are a
# fixed number of single-threaded processes, so at most WEB_CONCURRENCY connections.
# Set before the app loads in the workers, which inherit the environment.
os.environ.setdefault("CONN_MAX_AGE", "60")

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = 30
graceful_timeout = 20

_format = os.environ.get("LOG_FORMAT", "plain" if os.environ.get("DJANGO_DEBUG") == "1" else "json")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
    "filters": {
        "request_context": {"()": "accounts.logging.RequestContextFilter"},
        "mask_pii": {"()": "accounts.logging.MaskPIIFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "accounts.logging.JsonFormatter"},
    },
    "handlers": {
        "error_console": {"class": "logging.StreamHandler", "formatter": _format, "stream": "ext://sys.stderr",
                          "filters": ["request_context", "mask_pii"]},
    },
}
