"""gunicorn settings for the web process (overridable with GUNICORN_CMD_ARGS)."""

import os

workers = int(os.environ.get("WEB_WORKERS", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 10
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
bind = os.environ.get("WEB_BIND", "127.0.0.1:8001")  # loopback unless told; the image sets 0.0.0.0


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the shared Prometheus directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
