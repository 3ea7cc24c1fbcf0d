"""The openai client against a local OpenAI-compatible server: answers, failures, retries and the budget."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from app.config import Settings
from app.llm import provider_for
from app.llm.openai_compat import OpenAICompatible
from app.pipeline import reason
from tests.fakes import openai_server as fake
from tests.fakes import reasoning_inputs as inputs

TIMEOUT_S, BUDGET_S = 0.6, 1.6
GOOD = {"action_type": "timeout", "duration_hours": 1, "reason_code": "targeted_harassment", "confidence": 0.77,
        "reasoning": "Direct insult at a participant in a heating conversation."}


@pytest.fixture
def server() -> Iterator[fake.FakeOpenAI]:
    with fake.FakeOpenAI() as srv:
        yield srv


@pytest.fixture
def provider(server: fake.FakeOpenAI) -> OpenAICompatible:
    return OpenAICompatible("local", server.model, server.base_url, server.api_key)


def run(provider, budget_s: float = BUDGET_S):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    decision = reason.decide(inputs.event(), inputs.context(escalation=0.6), provider=provider,
                             policy="graduated_escalation", llm_timeout_s=TIMEOUT_S, deadline=started + budget_s)
    return decision, time.monotonic() - started


def llm_entry(decision):  # type: ignore[no-untyped-def]
    [entry] = [e for e in decision.evidence_chain if e["kind"] == "llm"]
    return entry


def timeouts() -> float:
    return REGISTRY.get_sample_value("safety_llm_timeout_total", {"provider": "local"}) or 0.0


def test_a_good_answer_is_used_and_the_request_is_what_the_real_service_expects(server, provider):
    server.script(fake.answer(GOOD))
    decision, _ = run(provider)
    assert (decision.provider, decision.action_type, decision.duration_hours) == ("local", "timeout", 1.0)
    assert decision.reasoning == GOOD["reasoning"] and decision.confidence == 0.77
    assert llm_entry(decision)["detail"]["outcome"] == "answered"
    [request] = server.chat_requests()
    assert request.headers["authorization"] == f"Bearer {server.api_key}"
    assert request.body["model"] == server.model
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.body["response_format"]["json_schema"]["strict"] is True
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]


def test_a_slow_server_is_retried_once_then_the_fallback_decides_within_the_budget(server, provider):
    server.script(fake.slow(3.0), fake.slow(3.0))
    before = timeouts()
    decision, elapsed = run(provider)
    assert decision.provider == "fallback"
    assert elapsed < BUDGET_S
    assert len(server.chat_requests()) == 2
    assert timeouts() - before == 2
    failures = llm_entry(decision)["detail"]["failures"]
    assert len(failures) == 2 and all("timeout" in f for f in failures)


def test_one_slow_answer_then_a_good_one(server, provider):
    server.script(fake.slow(3.0), fake.answer(GOOD))
    decision, elapsed = run(provider)
    assert decision.provider == "local" and decision.action_type == "timeout"
    assert TIMEOUT_S <= elapsed < BUDGET_S


def test_no_retry_is_started_without_time_left_for_it(server, provider):
    server.script(fake.slow(3.0), fake.answer(GOOD))
    decision, elapsed = run(provider, budget_s=TIMEOUT_S + 0.1)
    assert decision.provider == "fallback"
    assert len(server.chat_requests()) == 1
    assert elapsed < TIMEOUT_S + 0.3
    assert "skipped" in llm_entry(decision)["detail"]["failures"][-1]


def test_a_429_is_retried(server, provider):
    server.script(fake.status(429, retry_after=0.1), fake.answer(GOOD))
    decision, _ = run(provider)
    assert decision.provider == "local"
    assert "unavailable" in llm_entry(decision)["detail"]["failures"][0]


@pytest.mark.parametrize("first,second", [
    (fake.status(500), fake.status(503)),
    (fake.malformed(), fake.malformed("{\"action_type\": \"ban\"")),
    (fake.refusal(), fake.refusal()),
    (fake.answer(GOOD | {"action_type": "kick"}), fake.answer(GOOD | {"duration_hours": 500})),
])
def test_failures_twice_mean_the_fallback_and_are_recorded(server, provider, first, second):
    server.script(first, second)
    decision, elapsed = run(provider)
    assert decision.provider == "fallback"
    assert decision.action_type in {"warning", "timeout"}  # the fallback's own decision, not a leftover
    assert elapsed < BUDGET_S
    assert len(llm_entry(decision)["detail"]["failures"]) == 2


def test_a_rejected_request_is_not_retried(server):
    wrong_key = OpenAICompatible("local", server.model, server.base_url, "sk-wrong")
    decision, _ = run(wrong_key)
    assert decision.provider == "fallback"
    assert len(server.chat_requests()) == 1
    assert "HTTP 401" in llm_entry(decision)["detail"]["failures"][0]


def test_an_unknown_model_is_not_retried(server):
    decision, _ = run(OpenAICompatible("local", "no-such-model", server.base_url, server.api_key))
    assert decision.provider == "fallback" and len(server.chat_requests()) == 1


def test_the_provider_comes_from_settings():
    assert provider_for(Settings()) is None
    assert provider_for(Settings(LLM_PROVIDER="openai")) is None  # no key: the fallback alone
    assert provider_for(Settings(LLM_PROVIDER="local")) is None  # no endpoint
    local = provider_for(Settings(LLM_PROVIDER="local", LOCAL_LLM_ENDPOINT="http://127.0.0.1:9/v1", LLM_MODEL="m"))
    assert (local.name, local.model) == ("local", "m")
    assert provider_for(Settings(LLM_PROVIDER="openai", OPENAI_API_KEY="sk-x")).name == "openai"
