from __future__ import annotations


def test_healthz_needs_nothing(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_checks_both_stores(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json()["checks"] == {"redis": "ok", "postgres": "ok"}


def test_readyz_reports_a_dead_dependency(settings_map):
    from web import create_app

    resp = create_app(settings_map | {"REDIS_URL": "redis://127.0.0.1:1/0"}).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["redis"].startswith("unreachable")


def test_metrics_use_the_specification_names(client):
    text = client.get("/metrics").get_data(as_text=True)
    for name in ("safety_screening_duration_ms", "safety_events_processed_total", "safety_reasoning_duration_ms",
                 "safety_action_failed_total", "safety_llm_timeout_total", "safety_queue_length"):
        assert name in text, name
