"""The temporal model on real Redis: ordering, duplicates, concurrency, and what raises risk."""

from __future__ import annotations

import json
import threading

import pytest

from app.sessions import SessionParams, SessionStore, SessionUpdate

T0 = 1_790_000_000_000
PLACE = {"web:c": ("web", "c")}


@pytest.fixture
def store(rds):  # type: ignore[no-untyped-def]
    return SessionStore(rds, SessionParams(snapshot_every_s=0))  # always return the full contract


def msg(n: int, author: str, risk: float, *, target: str | None = None, hostile: bool = True, at_s: float = 0,
        prior: float = 0.0) -> SessionUpdate:
    return SessionUpdate(f"e{n}", "web:c", T0 + int(at_s * 1000), risk, hostile, author, target, prior)


def test_out_of_order_and_duplicate_events_give_the_same_state(store, rds):
    ordered = [msg(i, f"a{i % 2}", 0.1, hostile=False, at_s=i * 10) for i in range(6)]
    shuffled = [ordered[i] for i in (3, 0, 5, 1, 4, 2)] + [ordered[2], ordered[4]]
    store.update(shuffled[:4], PLACE)
    result = store.update(shuffled[4:], PLACE)["web:c"]
    contract = result.contract
    assert contract["message_count"] == 6
    assert contract["temporal_features"]["intervals"] == [10.0] * 5
    assert contract["time_span_minutes"] == pytest.approx(50 / 60, abs=1e-3)
    assert set(result.verdicts) == {"e2", "e4"}  # the repeated e2 and e4 get no second verdict


def test_concurrent_workers_never_lose_an_update(rds):
    def worker(k: int) -> None:
        own = SessionStore(rds, SessionParams())
        for i in range(25):
            own.update([msg(k * 100 + i, f"a{k}", 0.1, hostile=False, at_s=i)], PLACE)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    contract = SessionStore(rds, SessionParams()).get("web:c")
    assert contract["message_count"] == 100
    assert {p["user_id"]: p["message_count"] for p in contract["participants"]} == {f"a{k}": 25 for k in range(4)}


def test_friendly_profanity_between_regulars_does_not_escalate(store):
    banter = [msg(i, ("sam", "kim")[i % 2], 0.55, target=("kim", "sam")[i % 2], hostile=False, at_s=i * 5)
              for i in range(20)]
    result = store.update(banter, PLACE)["web:c"]
    assert all(v.final_risk == pytest.approx(0.55) and not v.flags for v in result.verdicts.values())
    assert result.contract["escalation_score"] < 0.3
    assert result.alerts == []


def test_a_milder_insult_after_flagged_ones_is_raised_as_repeated_targeting(store):
    store.update([msg(1, "troll", 0.9, target="vic", at_s=0), msg(2, "troll", 0.85, target="vic", at_s=30)], PLACE)
    third = store.update([msg(3, "troll", 0.6, target="vic", at_s=60)], PLACE)["web:c"].verdicts["e3"]
    assert third.final_risk >= 0.7
    assert "repeated_targeting" in third.flags


def test_a_run_of_borderline_scores_is_not_repetition(store):
    # Scores the model is torn on are mostly its noise: without one earlier message that was itself
    # risky there is nothing to repeat, however many borderline ones there were.
    verdicts = {}
    for i in range(5):
        verdicts.update(store.update([msg(i, "user", 0.55, target="bot", at_s=i * 30)], PLACE)["web:c"].verdicts)
    assert all(v.final_risk == pytest.approx(0.55) and not v.flags for v in verdicts.values())


def test_context_cannot_lift_a_borderline_message_as_far_as_a_leaning_one(store):
    store.update([msg(1, "troll", 0.9, target="vic", at_s=0), msg(2, "troll", 0.9, target="vic", at_s=10)], PLACE)
    low = store.update([msg(3, "troll", 0.4, target="vic", at_s=20)], PLACE)["web:c"].verdicts["e3"]
    high = store.update([msg(4, "troll", 0.6, target="vic", at_s=30)], PLACE)["web:c"].verdicts["e4"]
    assert low.final_risk < 0.7 <= high.final_risk
    assert high.final_risk - 0.6 > low.final_risk - 0.4


def test_friends_roasting_each_other_are_peers_not_targets(store):
    # A three-way roast the model scores as harassment: everyone gives and takes, no one is
    # singled out, so neither repetition nor heat raises anything (the model's scores stand).
    names = ("sam", "kim", "lee")
    risks = [0.9, 0.75, 0.8, 0.6, 0.65, 0.6, 0.9, 0.62, 0.6]
    verdicts = {}
    for i, risk in enumerate(risks):
        m = msg(i, names[i % 3], risk, target=names[(i + 1) % 3], at_s=i * 8)
        verdicts.update(store.update([m], PLACE)["web:c"].verdicts)
    for i, risk in enumerate(risks):
        assert verdicts[f"e{i}"].final_risk == pytest.approx(risk)
        assert not verdicts[f"e{i}"].flags


def test_a_fight_elsewhere_in_the_room_does_not_heat_a_message(store):
    fight = [msg(i, ("a", "b")[i % 2], 0.9, target=("b", "a")[i % 2], at_s=i * 5) for i in range(6)]
    store.update(fight, PLACE)
    other = store.update([msg(10, "c", 0.6, target="d", at_s=35)], PLACE)["web:c"].verdicts["e10"]
    assert other.final_risk == pytest.approx(0.6) and other.flags == []


def test_others_hostile_to_the_same_target_heat_a_message(store):
    store.update([msg(1, "x", 0.9, target="d", at_s=0), msg(2, "x", 0.9, target="d", at_s=10)], PLACE)
    joined = store.update([msg(3, "c", 0.6, target="d", at_s=20)], PLACE)["web:c"].verdicts["e3"]
    assert joined.final_risk >= 0.7
    assert "escalating_session" in joined.flags and "pile_on" not in joined.flags  # two authors only


def test_a_victim_answering_back_is_not_a_repeat_offender(store):
    store.update([msg(1, "troll", 0.6, target="vic", at_s=0), msg(2, "troll", 0.6, target="vic", at_s=10),
                  msg(3, "troll", 0.6, target="vic", at_s=20)], PLACE)
    answers = store.update([msg(4, "vic", 0.45, target="troll", at_s=30), msg(5, "vic", 0.45, target="troll", at_s=40),
                            msg(6, "vic", 0.45, target="troll", at_s=50)], PLACE)["web:c"]
    assert "repeated_targeting" not in answers.verdicts["e6"].flags


def test_a_raid_is_detected_by_the_third_author_and_alerts_once(store):
    raid = [msg(i, f"fresh{i}", 0.45, target="streamer", at_s=i * 15) for i in range(6)]
    verdicts, alerts = {}, []
    for m in raid:
        result = store.update([m], PLACE)["web:c"]
        verdicts.update(result.verdicts)
        alerts += result.alerts
    assert "pile_on" not in verdicts["e1"].flags
    assert "pile_on" in verdicts["e2"].flags  # the third distinct author
    assert verdicts["e2"].final_risk >= 0.7
    pile = [a for a in alerts if a["kind"] == "pile_on"]
    assert len(pile) == 1 and pile[0]["target"] == "streamer" and len(pile[0]["authors"]) == 3


def test_a_known_offender_is_recognised_in_a_new_channel(store):
    clean = store.update([msg(1, "x", 0.6, target="v")], PLACE)["web:c"].verdicts["e1"]
    other = {"web:d": ("web", "d")}
    known = SessionUpdate("e2", "web:d", T0, 0.6, True, "y", "v", prior=1.0)
    flagged = store.update([known], other)["web:d"].verdicts["e2"]
    assert flagged.final_risk > clean.final_risk
    assert "repeat_offender" in flagged.flags


def test_switching_signals_off_keeps_state_but_never_raises_risk(rds):
    off = SessionStore(rds, SessionParams(enabled=False, snapshot_every_s=0))
    raid = [msg(i, f"fresh{i}", 0.45, target="streamer", at_s=i) for i in range(5)]
    result = off.update(raid, PLACE)["web:c"]
    assert all(v.final_risk == pytest.approx(0.45) for v in result.verdicts.values())
    assert result.contract["message_count"] == 5


def test_escalation_alert_when_a_conversation_heats_up(store):
    calm = [msg(i, "a", 0.05, hostile=False, at_s=i * 20) for i in range(5)]
    store.update(calm, PLACE)
    hot = [msg(10 + i, ("a", "b")[i % 2], 0.8, target=("b", "a")[i % 2], at_s=100 + i * 5) for i in range(8)]
    result = store.update(hot, PLACE)["web:c"]
    assert result.contract["escalation_score"] >= 0.6
    assert [a["kind"] for a in result.alerts].count("escalation") == 1


def test_an_insult_back_at_a_harasser_is_damped_not_raised(store):
    store.update([msg(1, "bully", 0.9, target="kid", at_s=0), msg(2, "bully", 0.9, target="kid", at_s=20)], PLACE)
    reply = store.update([msg(3, "kid", 0.9, target="bully", at_s=40)], PLACE)["web:c"].verdicts["e3"]
    assert reply.final_risk < 0.7
    assert reply.flags == ["answering_harasser"]
    again = store.update([msg(4, "bully", 0.6, target="kid", at_s=60)], PLACE)["web:c"].verdicts["e4"]
    assert again.final_risk >= 0.7 and "repeated_targeting" in again.flags


def test_one_attack_is_enough_to_be_answering_back(store):
    store.update([msg(1, "bully", 0.95, target="kid", at_s=0)], PLACE)
    reply = store.update([msg(2, "kid", 0.8, target="bully", at_s=10)], PLACE)["web:c"].verdicts["e2"]
    assert reply.final_risk == pytest.approx(0.8 * 0.7) and reply.flags == ["answering_harasser"]


def test_a_threat_back_is_never_damped(store):
    store.update([msg(1, "bully", 0.95, target="kid", at_s=0)], PLACE)
    threat = SessionUpdate("e2", "web:c", T0 + 10_000, 0.9, True, "kid", "bully", 0.0, "threat")
    reply = store.update([threat], PLACE)["web:c"].verdicts["e2"]
    assert reply.final_risk == pytest.approx(0.9) and reply.flags == ["answering_harasser"]


def test_a_borderline_message_is_not_an_attack_to_answer(store):
    # The model's noise (0.6 here) must not turn the next person into a "victim" whose flag is damped.
    store.update([msg(1, "bot", 0.6, target="user", at_s=0)], PLACE)
    reply = store.update([msg(2, "user", 0.9, target="bot", at_s=10)], PLACE)["web:c"].verdicts["e2"]
    assert reply.final_risk == pytest.approx(0.9) and "answering_harasser" not in reply.flags


def test_whoever_attacked_first_is_not_answering_back(store):
    store.update([msg(1, "a", 0.9, target="b", at_s=0), msg(2, "b", 0.9, target="a", at_s=10)], PLACE)
    back = store.update([msg(3, "a", 0.9, target="b", at_s=20)], PLACE)["web:c"].verdicts["e3"]
    assert back.final_risk >= 0.9 and "answering_harasser" not in back.flags


def test_who_started_it_is_remembered_beyond_the_horizon(store):
    # A long exchange: the bully's first attack (t=0) leaves the 600 s horizon while the kid's
    # weak early reply (t=200) is still inside it. The kid did not start it, and is still answering.
    store.update([msg(1, "bully", 0.95, target="kid", at_s=0), msg(2, "kid", 0.5, target="bully", at_s=200),
                  msg(3, "bully", 0.95, target="kid", at_s=650)], PLACE)
    reply = store.update([msg(4, "kid", 0.9, target="bully", at_s=700)], PLACE)["web:c"].verdicts["e4"]
    assert reply.flags == ["answering_harasser"] and reply.final_risk == pytest.approx(0.9 * 0.7)


def test_answering_back_stops_once_the_victim_outdoes_the_attacks(store):
    store.update([msg(1, "bully", 0.9, target="kid", at_s=0)], PLACE)
    replies = [msg(2 + i, "kid", 0.9, target="bully", at_s=10 + i * 10) for i in range(3)]
    verdicts = store.update(replies, PLACE)["web:c"].verdicts
    assert [("answering_harasser" in verdicts[f"e{2 + i}"].flags) for i in range(3)] == [True, True, False]
    assert verdicts["e4"].final_risk >= 0.9


def test_a_raider_the_streamer_snapped_at_is_still_in_the_pile_on(store):
    store.update([msg(1, "fresh1", 0.3, target="streamer", at_s=0), msg(2, "fresh2", 0.6, target="streamer", at_s=5),
                  msg(3, "fresh3", 0.6, target="streamer", at_s=8), msg(4, "streamer", 0.8, target="fresh1", at_s=10)],
                 PLACE)
    raider = store.update([msg(5, "fresh1", 0.6, target="streamer", at_s=15)], PLACE)["web:c"].verdicts["e5"]
    assert "pile_on" in raider.flags and "answering_harasser" not in raider.flags and raider.final_risk >= 0.7


def test_flags_earned_in_this_session_are_not_a_prior_twice(store):
    # The standing the caller passes already counts this session's flag (1/6 per flagged message):
    # that is repetition, anchored and counted once, not a reputation from elsewhere.
    store.update([msg(1, "x", 0.9, target="v", at_s=0)], PLACE)
    later = store.update([msg(2, "x", 0.6, target="w", at_s=10, prior=1 / 6)], PLACE)["web:c"].verdicts["e2"]
    assert later.final_risk == pytest.approx(0.6, abs=1e-3)  # not 0.618 as with the prior counted


def test_the_prior_per_flag_matches_the_standing():
    from app.standing import standing_of

    assert standing_of(10, 1, 0)["prior"] == pytest.approx(SessionParams().prior_per_flag, abs=1e-4)


def test_risk_thresholds_follow_the_flag_threshold(rds):
    # attack_min_risk and repeat_anchor_risk default to the flag threshold, whatever it is set to.
    store = SessionStore(rds, SessionParams(threshold=0.8, snapshot_every_s=0))
    store.update([msg(1, "bully", 0.75, target="kid", at_s=0)], PLACE)
    reply = store.update([msg(2, "kid", 0.9, target="bully", at_s=10)], PLACE)["web:c"].verdicts["e2"]
    assert "answering_harasser" not in reply.flags  # 0.75 is below this threshold: no attack


def test_quiet_updates_skip_the_snapshot_and_the_sweeper_writes_it(rds, settings):
    from app import maintenance
    from app.db import session_scope
    from app.models import Session as SessionRow
    from app.sessions import DIRTY_KEY

    store = SessionStore(rds, SessionParams(snapshot_every_s=60))
    first = store.update([msg(1, "a", 0.1, hostile=False, at_s=0)], PLACE)["web:c"]
    second = store.update([msg(2, "b", 0.1, hostile=False, at_s=5)], PLACE)["web:c"]
    assert first.snapshot and not second.snapshot
    assert second.contract == {"message_count": 2, "escalation_score": second.contract["escalation_score"]}
    assert rds.zscore(DIRTY_KEY, "web:c") is not None
    flagged = store.update([msg(3, "c", 0.95, target="b", at_s=6)], PLACE)["web:c"]
    assert flagged.snapshot  # something happened: snapshot now, whatever the interval
    store.update([msg(4, "a", 0.1, hostile=False, at_s=7)], PLACE)
    with session_scope() as db:
        assert maintenance.snapshot_sessions(rds, db, older_than_s=0) == 1
    with session_scope() as db:
        assert db.get(SessionRow, "web:c").message_count == 4
    assert rds.zscore(DIRTY_KEY, "web:c") is None


def test_the_turn_a_message_answers_is_the_latest_between_the_same_two_people(rds):
    from app.sessions import TURNS_KEPT, Turn, queue_turns, turns_key

    def record_turns(client, turns, ttl):  # type: ignore[no-untyped-def]
        pipe = client.pipeline(transaction=False)
        read = queue_turns(pipe, turns, ttl)
        return read(pipe.execute())

    def turn(n: int, author: str, target: str | None, at_s: int, text: str, session: str = "web:c") -> Turn:
        return Turn(session, f"e{n}", T0 + at_s * 1000, author, target, text)

    first = record_turns(rds, [turn(1, "troll", "ann", 0, "you are pathetic"), turn(3, "ann", "troll", 3, "stop it"),
                               turn(9, "bob", "troll", 1, "elsewhere", session="web:d")], ttl=60)
    assert first == [[], ["you are pathetic"], []]  # a batch sees itself; other conversations stay apart
    assert record_turns(rds, [turn(2, "bob", None, 2, "brb")], ttl=60) == [[]]  # small talk is read alone
    assert record_turns(rds, [turn(4, "troll", "ann", 4, "cry more")], ttl=60) == [["stop it"]]
    assert record_turns(rds, [turn(5, "cat", "troll", 5, "wow")], ttl=60) == [["cry more"]]  # its author
    assert record_turns(rds, [turn(6, "troll", None, 6, "lol")], ttl=60) == [["wow"]]  # addressed to them
    late = record_turns(rds, [turn(7, "ann", "troll", 1, "what?")], ttl=60)
    assert late == [["you are pathetic"]]  # a late arrival sees only what came before it
    again = record_turns(rds, [turn(2, "bob", None, 2, "brb")], ttl=60)  # a redelivery adds nothing
    assert again == [[]] and rds.zcard(turns_key("web:c")) == 7
    assert 0 < rds.ttl(turns_key("web:c")) <= 60
    record_turns(rds, [turn(100 + i, "x", "y", 10 + i, "x" * 5000) for i in range(TURNS_KEPT + 5)], ttl=60)
    assert rds.zcard(turns_key("web:c")) == TURNS_KEPT
    assert record_turns(rds, [], ttl=60) == []


def test_turns_and_standing_share_one_round_trip_with_other_work(rds, settings):
    import json

    from app import standing
    from app.db import session_scope
    from app.sessions import Turn, queue_turns

    standing.cache(rds, [(("web", "troll"), standing.standing_of(10, 3, 0))])
    rds.set("unrelated", "x")
    pipe = rds.pipeline(transaction=False)
    pipe.get("unrelated")  # the caller's own command first: each reader finds its replies by position
    read_turns = queue_turns(pipe, [Turn("web:c", "e1", T0, "troll", "ann", "you are pathetic"),
                                    Turn("web:c", "e2", T0 + 1000, "ann", "troll", "stop it")], ttl=60)
    read_priors = standing.queue_priors(pipe, [("web", "troll"), ("web", "ann"), ("web", "troll")])
    pipe.get("unrelated")
    replies = pipe.execute()
    assert replies[0] == replies[-1] == "x"
    assert read_turns(replies) == [[], ["you are pathetic"]]
    with session_scope() as db:
        assert read_priors(replies, db) == {("web", "troll"): 0.5, ("web", "ann"): 0.0}
    assert json.loads(rds.get(standing.reputation_key("web", "troll")))["flagged"] == 3


def test_an_update_survives_redis_losing_its_script_cache(store, rds):
    store.update([msg(1, "a", 0.1, hostile=False)], PLACE)
    rds.script_flush()  # what a Redis restart does to the cache; the first EVALSHA then fails with NOSCRIPT
    result = store.update([msg(2, "a", 0.1, hostile=False, at_s=5)], PLACE)["web:c"]
    assert result.contract["message_count"] == 2 and set(result.verdicts) == {"e2"}
    assert rds.script_exists(store.script.sha) == [True]


def plea(n: int, author: str, risk: float, *, target: str | None = None, at_s: float = 0) -> SessionUpdate:
    return SessionUpdate(f"e{n}", "web:c", T0 + int(at_s * 1000), risk, True, author, target, 0.0,
                         "targeted_harassment", plea=True)


def test_a_help_request_lowers_its_author_and_raises_the_harasser(store):
    # The model reads the insult the request answers and scores the request itself as hostile; the
    # session knows better: the person asking for help is never raised, and is damped.
    store.update([msg(1, "x", 0.8, target="vic", at_s=0), msg(2, "x", 0.75, target="vic", at_s=20)], PLACE)
    ask = store.update([plea(3, "vic", 0.9, target="x", at_s=40)], PLACE)["web:c"].verdicts["e3"]
    assert ask.final_risk == pytest.approx(0.9 * 0.7) and ask.flags == ["asking_for_help"]
    # ... and the harasser who keeps going after being asked to stop is repeating, whatever the target.
    after = store.update([msg(4, "x", 0.6, target=None, at_s=60)], PLACE)["web:c"].verdicts["e4"]
    assert after.final_risk >= 0.7 and "ignored_request_to_stop" in after.flags


def test_an_untargeted_message_is_not_heated_by_the_attacks_on_its_author(store):
    # "you" started a fight with z (so is not protected as under attack); the pile on "you" since
    # still says nothing about "you"'s next message to the room.
    store.update([msg(0, "you", 0.9, target="z", at_s=0)]
                 + [msg(i, f"r{i}", 0.9, target="you", at_s=5 + i * 5) for i in range(1, 4)], PLACE)
    own = store.update([msg(9, "you", 0.6, target=None, at_s=25)], PLACE)["web:c"].verdicts["e9"]
    assert own.final_risk == pytest.approx(0.6) and own.flags == []


def test_the_aggressor_saying_please_stop_is_not_protected(store):
    store.update([msg(1, "dan", 0.9, target="eve", at_s=0)], PLACE)
    again = store.update([plea(2, "dan", 0.8, target="eve", at_s=20)], PLACE)["web:c"].verdicts["e2"]
    assert again.final_risk >= 0.8 and "asking_for_help" not in again.flags


def test_a_bystander_defending_the_target_is_damped_not_raised(store):
    store.update([msg(1, "bully", 0.9, target="kid", at_s=0), msg(2, "bully", 0.85, target="kid", at_s=10)], PLACE)
    told = store.update([msg(3, "ally", 0.8, target="bully", at_s=20)], PLACE)["web:c"].verdicts["e3"]
    assert told.final_risk == pytest.approx(0.8 * 0.7) and told.flags == ["defending_target"]


def test_a_mild_message_from_a_known_offender_is_raised_in_proportion_not_to_certainty(store):
    mild = SessionUpdate("e1", "web:c", T0, 0.5, True, "y", "z", prior=1.0)
    verdict = store.update([mild], PLACE)["web:c"].verdicts["e1"]
    assert 0.5 < verdict.final_risk < 0.7 and verdict.flags == []


def test_no_context_jumps_a_message_past_the_lift_cap(store):
    import math

    store.update([msg(i, f"r{i}", 0.95, target="vic", at_s=i) for i in range(4)]
                 + [msg(10 + i, "x", 0.95, target="vic", at_s=5 + i) for i in range(3)], PLACE)
    worst = SessionUpdate("e20", "web:c", T0 + 9000, 0.5, True, "x", "vic", prior=1.0)
    verdict = store.update([worst], PLACE)["web:c"].verdicts["e20"]
    cap = 1 / (1 + math.exp(-SessionParams().max_lift))  # from 0.5, logit 0
    assert 0.7 <= verdict.final_risk <= cap + 1e-4 < 0.95


def test_hostility_kept_just_under_the_threshold_is_persistent(store):
    verdicts = {}
    for i, risk in enumerate((0.63, 0.65, 0.64)):
        verdicts.update(store.update([msg(i, "feeder", risk, target=None, at_s=i * 40)], PLACE)["web:c"].verdicts)
    assert verdicts["e0"].final_risk == pytest.approx(0.63) and verdicts["e1"].final_risk == pytest.approx(0.65)
    assert verdicts["e2"].final_risk >= 0.7 and "persistent_hostility" in verdicts["e2"].flags


def test_an_escalation_alert_names_who_whom_and_which_message(store):
    hot = [msg(i, "troll", 0.9, target="vic", at_s=i * 5) for i in range(8)]
    hot.insert(3, msg(50, "vic", 0.2, hostile=False, target="troll", at_s=12))
    alerts = store.update(hot, PLACE)["web:c"].alerts
    [escalation] = [a for a in alerts if a["kind"] == "escalation"]
    assert escalation["target"] == "vic" and escalation["authors"] == ["troll"]
    assert escalation["eid"] in {f"e{i}" for i in range(8)}


def test_the_person_under_attack_thanking_a_defender_is_not_flagged(store):
    store.update([msg(1, "bully", 0.95, target="kid", at_s=0), plea(2, "ally", 0.5, target="bully", at_s=10)], PLACE)
    thanks = store.update([msg(3, "kid", 0.9, target="ally", at_s=20)], PLACE)["web:c"].verdicts["e3"]
    assert thanks.final_risk == pytest.approx(0.9 * 0.7) and thanks.flags == ["under_attack"]


def test_an_escalation_alert_row_carries_event_authors_and_target(store):
    from app.pipeline.screen import alert_rows

    hot = [msg(i, ("t1", "t2")[i % 2], 0.9, target="vic", at_s=i * 5) for i in range(8)]
    results = store.update(hot, PLACE)
    [row] = [r for r in alert_rows(results, {"web:c": "web"}) if r["kind"] == "escalation"]
    assert row["event_id"] in {f"e{i}" for i in range(8)}
    assert row["authors"] == ["t1", "t2"] and row["target_user_id"] == "vic"


def test_context_alone_does_not_flag_a_message_the_model_could_not_read(store):
    store.update([msg(1, "bex", 0.95, target="cam", at_s=0), msg(2, "bex", 0.62, target="cam", at_s=10)], PLACE)
    unread = SessionUpdate("e3", "web:c", T0 + 20_000, 0.62, True, "bex", "cam", uncertain=True)
    verdict = store.update([unread], PLACE)["web:c"].verdicts["e3"]
    assert 0.62 <= verdict.final_risk < 0.7 and verdict.flags == []
    read = store.update([msg(4, "bex", 0.62, target="cam", at_s=30)], PLACE)["web:c"].verdicts["e4"]
    assert read.final_risk >= 0.7 and "repeated_targeting" in read.flags


@pytest.mark.parametrize("text", ["mods please, @x keeps insulting me", "please stop", "@dan stop",
                                  "leave the host alone, this is a raid", "dude that's not cool, back off",
                                  "can you stop flaming, we can still win", "i'm reporting you"])
def test_pleas(text: str) -> None:
    from app.sessions import is_plea

    assert is_plea(text)


@pytest.mark.parametrize("text", ["stop feeding you idiot", "report jungle", "mods are trash", "gg wp",
                                  "your stream is trash and so are you", "that's ok", "you keep messing up",
                                  "top 2019 mod list? what mods do you guys think deserve a spot",
                                  "nobody will leave you alone, loser", "a long post quoting please don't " * 8])
def test_not_pleas(text: str) -> None:
    from app.sessions import is_plea

    assert not is_plea(text)


def test_one_hostile_reply_in_a_thread_is_not_a_victim_to_defend(store):
    # Reddit-like chains: each reply answers the one before. C's insult to B, who was rude to A once,
    # is C's own, not a defence of A.
    store.update([msg(1, "a", 0.2, hostile=False, target=None, at_s=0), msg(2, "b", 0.9, target="a", at_s=10)], PLACE)
    reply = store.update([msg(3, "c", 0.85, target="b", at_s=20)], PLACE)["web:c"].verdicts["e3"]
    assert reply.final_risk >= 0.85 and "defending_target" not in reply.flags


def test_a_plea_is_forgotten_once_it_leaves_the_horizon(store, rds):
    from app.sessions import read_state, session_key

    store.update([msg(1, "x", 0.9, target="vic", at_s=0), plea(2, "vic", 0.3, target="x", at_s=10)], PLACE)
    assert read_state(rds, session_key("web:c"))["pleas"] == {"x": {"vic": T0 + 10_000}}
    store.update([msg(3, "y", 0.1, hostile=False, at_s=700)], PLACE)
    assert read_state(rds, session_key("web:c"))["pleas"] in ({}, [])
    late = store.update([msg(4, "x", 0.6, target=None, at_s=710)], PLACE)["web:c"].verdicts["e4"]
    assert "ignored_request_to_stop" not in late.flags


def test_a_help_request_through_screening_is_never_flagged(settings, rds):
    # The case, end to end through the screening model: the target's own request for help,
    # which the model reads together with the insult it answers, comes out lowered, never flagged.
    import time as clock

    from app.db import session_scope
    from app.pipeline import screen
    from app.schemas import EventSchema
    from ml.screening import get_screener
    from tests.conftest import make_event

    base = 1_790_000_000
    lines = [("x", "vic", "you are pathetic and stupid, everyone here hates you"),
             ("x", "vic", "shut up, nobody wants you here, loser"),
             ("vic", "x", "mods please, @x keeps insulting me")]
    items = [{"event": EventSchema().load(make_event(i, author_id=a, user_id=t, content=text,
                                                     metadata={"timestamp": base + i * 20})),
              "received_at": int(clock.time() * 1000)} for i, (a, t, text) in enumerate(lines)]
    predictions = {}
    for item in items:
        with session_scope() as db:
            result = screen.screen_batch([item], screener=get_screener(), db=db, client=rds, settings=settings)
        predictions.update({s.event["event_id"]: s.prediction for s in result.screened})
    ask = predictions["evt-2"]
    assert "asking_for_help" in ask["flags"]
    assert ask["risk_score"] < settings.SCREENING_THRESHOLD and ask["risk_score"] <= ask["model_risk_score"]


def test_the_state_is_a_hash_of_the_session_its_people_and_what_they_were_sent(store, rds):
    from app.sessions import read_state, session_key

    key = session_key("web:c")
    store.update([msg(1, "q", 0.1, hostile=False, at_s=0), msg(2, "x", 0.9, target="vic", at_s=5)], PLACE)
    assert rds.type(key) == "hash"
    assert set(rds.hkeys(key)) == {"s", "p:q", "p:x", "t:vic", "h:vic"}
    assert [h["author"] for h in json.loads(rds.hget(key, "h:vic"))] == ["x"]
    assert set(read_state(rds, key)["participants"]) == {"q", "x"}
    # A clean participant is forgotten once out of the horizon; the flagged aggressor is kept.
    store.update([msg(3, "y", 0.1, hostile=False, at_s=700)], PLACE)
    assert "p:q" not in rds.hkeys(key) and "p:x" in rds.hkeys(key)
    assert 0 < rds.ttl(key) <= 1800


def test_a_state_in_the_single_string_layout_is_carried_over(store, rds):
    """A session written before the hash layout (one JSON string, with each target's hits inside it)
    goes on where it was: the next update reads it whole and writes it back as a hash."""
    from app.sessions import read_state, session_key

    history = [msg(1, "x", 0.9, target="vic", at_s=0), msg(2, "y", 0.6, target="vic", at_s=5),
               plea(3, "vic", 0.3, target="x", at_s=10), msg(4, "q", 0.1, hostile=False, at_s=12)]
    store.update(history, PLACE)
    hashed = rds.hgetall(session_key("web:c"))
    flat = read_state(rds, session_key("web:c"))
    for uid in flat["targets"]:
        flat["targets"][uid]["hits"] = json.loads(hashed[f"h:{uid}"])
    del flat["roster"]
    flat["session_id"], flat["channel_id"] = "web:old", "old"
    rds.set(session_key("web:old"), json.dumps(flat), ex=1800)
    assert read_state(rds, session_key("web:old"))["message_count"] == 4  # readers take the old layout too

    def follow_up(session: str) -> SessionUpdate:
        return SessionUpdate("e5", session, T0 + 20_000, 0.65, True, "x", "vic")

    new = store.update([follow_up("web:c")], PLACE)["web:c"]
    old = store.update([follow_up("web:old")], {"web:old": ("web", "old")})["web:old"]
    assert old.verdicts["e5"] == new.verdicts["e5"]
    assert "ignored_request_to_stop" in old.verdicts["e5"].flags  # the plea survived the move
    assert {k: v for k, v in old.contract.items() if k not in ("session_id", "channel_id")} == \
        {k: v for k, v in new.contract.items() if k not in ("session_id", "channel_id")}
    assert rds.type(session_key("web:old")) == "hash"
    assert set(rds.hkeys(session_key("web:old"))) == set(hashed)
