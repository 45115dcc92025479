"""The micro-batcher's admission and bookkeeping. ``refusal`` and ``CostEstimate`` are pure, so their
promises are checked as properties; ``MicroBatcher``'s counts on a real model, inline and on its thread,
batched and not, through a failing text and a cancelled request."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sentitune
from sentitune.serving.batching import CostEstimate, MicroBatcher, refusal
from sentitune.serving.guards import retry_seconds

counts = st.integers(0, 10_000)
texts_per_request = st.integers(1, 1_000)
per_text = st.floats(0, 10, allow_nan=False)
max_queue = st.none() | st.integers(1, 10_000)
max_queue_wait_s = st.none() | st.floats(1e-6, 100, allow_nan=False)


# ------------------------------------------------------------------------------------- refusal
@given(counts, texts_per_request, per_text, max_queue, max_queue_wait_s)
def test_an_empty_queue_always_admits(in_model, n, per_text, max_queue, max_queue_wait_s):
    # so a request larger than either limit is not refused forever
    assert refusal(0, in_model, n, per_text, max_queue, max_queue_wait_s) is None


@given(counts, counts, counts, texts_per_request, per_text, max_queue, max_queue_wait_s)
def test_more_work_is_never_admitted_where_less_was_refused(waiting, in_model, more, n, per_text, limit, wait_s):
    if refusal(waiting, in_model, n, per_text, limit, wait_s) is None:
        return
    assert refusal(waiting + more, in_model, n, per_text, limit, wait_s) is not None
    assert refusal(waiting, in_model + more, n, per_text, limit, wait_s) is not None
    assert refusal(waiting, in_model, n + more, per_text, limit, wait_s) is not None
    assert refusal(waiting, in_model, n, per_text * 2, limit, wait_s) is not None


@given(st.integers(1, 10_000), counts, texts_per_request, per_text, max_queue, max_queue_wait_s)
def test_refused_exactly_past_a_limit_with_a_whole_retry_after(waiting, in_model, n, per_text, limit, wait_s):
    refused = refusal(waiting, in_model, n, per_text, limit, wait_s)
    over_count = limit is not None and waiting + n > limit
    over_time = wait_s is not None and (waiting + in_model + n) * per_text > wait_s
    assert (refused is not None) == (over_count or over_time)
    if refused is not None:
        assert "limit" in str(refused) and refused.retry_after_s >= 0
        header = retry_seconds(refused.retry_after_s)
        assert header.isdigit() and int(header) >= min(max(1, refused.retry_after_s), 86_400)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_retry_after_is_at_least_one_whole_second(seconds):
    header = retry_seconds(seconds)
    assert header.isdigit() and 1 <= int(header) <= 86_400
    if 1 <= seconds <= 86_400:
        assert int(header) == math.ceil(seconds)


# -------------------------------------------------------------------------------- CostEstimate
calls = st.lists(st.tuples(st.integers(1, 64), st.floats(0, 10, allow_nan=False)), min_size=1, max_size=50)


def test_no_estimate_before_a_call_and_empty_calls_are_ignored():
    cost = CostEstimate()
    assert cost.per_text == 0.0  # nothing is refused for time before the model was timed
    cost.observe(0, 5.0)
    assert cost.per_text == 0.0
    cost.observe(4, 0.2)
    cost.observe(0, 5.0)
    assert cost.per_text == pytest.approx(0.05)


@given(calls)
def test_the_estimate_lies_between_the_calls_seconds_per_text(observed):
    cost = CostEstimate()
    for texts, seconds in observed:
        cost.observe(texts, seconds)
    rates = [seconds / texts for texts, seconds in observed]
    assert min(rates) * (1 - 1e-9) <= cost.per_text <= max(rates) * (1 + 1e-9)


@given(calls, st.floats(1e-4, 10), st.integers(1, 64))
def test_the_estimate_follows_the_recent_calls(earlier, rate, texts):
    cost = CostEstimate()
    for n, seconds in earlier:
        cost.observe(n, seconds)
    for _ in range(60):  # the model slowed down (or sped up): the older calls fade out
        cost.observe(texts, rate * texts)
    assert cost.per_text == pytest.approx(rate, rel=1e-3, abs=1e-4)


# ---------------------------------------------------------------------------------- the counts
@pytest.fixture(scope="module")
def failing_model(tfidf_model_dir):
    """The real tfidf model, failing on any batch with a text containing "poison"."""
    model = sentitune.load(tfidf_model_dir)
    real_logits = model.logits

    def logits(texts):
        if any("poison" in t for t in texts):
            raise RuntimeError("the model cannot score this text")
        return real_logits(texts)

    model.logits = logits
    return model


@pytest.mark.parametrize("inline", [False, True], ids=["thread", "inline"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_counts_return_to_zero_after_answers_and_failures(failing_model, inline, batched):
    texts = [f"a {'lovely' if i % 2 else 'dreadful'} stay, number {i}" for i in range(24)]

    async def scenario():
        batcher = MicroBatcher(failing_model.predict_records, max_batch_size=4, enabled=batched, max_queue=1_000)
        batcher.inline = inline
        await batcher.start()
        requests = [batcher.submit([t]) for t in texts] + [batcher.submit(["poison pill", "good"])]
        requests.append(batcher.call(failing_model.predict_records, ["poison, alone"]))
        results = await asyncio.gather(*requests, return_exceptions=True)
        counts = batcher.waiting, batcher.in_model
        await batcher.stop()
        return results, counts

    results, counts = asyncio.run(scenario())
    assert counts == (0, 0)
    # batched, the poisoned batch is scored again text by text: the requests that shared it are answered
    expected = failing_model.predict_records(texts)
    assert [r[0]["label"] for r in results[:24]] == [e["label"] for e in expected]
    assert [r[0]["confidence"] for r in results[:24]] == pytest.approx([e["confidence"] for e in expected])
    assert isinstance(results[-2], RuntimeError) and isinstance(results[-1], RuntimeError)


def test_a_request_cancelled_before_the_model_took_it_leaves_no_count(tfidf_model_dir):
    """One model call per request (micro-batching off): the second request waits in the model thread's
    queue; cancelled there, it never runs, and must not leave the queue looking full."""
    model = sentitune.load(tfidf_model_dir)
    real_logits, entered, release, scored = model.logits, threading.Event(), threading.Event(), []

    def held_logits(texts):  # the real model, held until the test lets it go
        scored.extend(texts)
        entered.set()
        assert release.wait(30)
        return real_logits(texts)

    model.logits = held_logits

    async def scenario():
        batcher = MicroBatcher(model.predict_records, enabled=False, max_queue=1)
        first = asyncio.ensure_future(batcher.submit(["first"]))
        assert await asyncio.to_thread(entered.wait, 30)
        await asyncio.sleep(0.05)  # the loop has counted "first" as in the model
        second = asyncio.ensure_future(batcher.submit(["second"]))
        await asyncio.sleep(0.05)
        in_flight = batcher.waiting, batcher.in_model
        refused = batcher.full()
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        release.set()
        await first
        after = batcher.waiting, batcher.in_model, batcher.full()
        third = await batcher.submit(["third"])
        await batcher.stop()
        return in_flight, refused, after, third

    in_flight, refused, after, third = asyncio.run(scenario())
    assert in_flight == (1, 1) and refused is not None and "limit 1" in str(refused)
    assert after == (0, 0, None)
    assert scored == ["first", "third"]  # "second" never reached the model
    assert third == model.predict_records(["third"])


def test_with_two_model_threads_a_batch_is_answered_while_another_is_still_scored(tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir)
    real_logits, entered, release = model.logits, threading.Event(), threading.Event()
    on_primary = {}

    def logits(texts):  # the real model; the batch holding "slow" waits until the test lets it go
        on_primary[texts[0]] = batcher.on_primary_thread()
        if "slow" in texts:
            entered.set()
            assert release.wait(30)
        return real_logits(texts)

    model.logits = logits

    batcher = MicroBatcher(model.predict_records, max_queue=1_000, workers=2)

    async def scenario():
        await batcher.start()
        slow = asyncio.ensure_future(batcher.submit(["slow"]))
        assert await asyncio.to_thread(entered.wait, 30)
        quick = await asyncio.wait_for(batcher.submit(["a lovely stay", "a dreadful stay"]), 30)
        still_scoring = not slow.done()
        batcher.cost.observe(10, 1.0)
        shared_cost = batcher.per_text_s, batcher.cost.per_text
        release.set()
        await slow
        counts = batcher.waiting, batcher.in_model
        await batcher.stop()
        return quick, still_scoring, shared_cost, counts

    quick, still_scoring, (shared, per_call), counts = asyncio.run(scenario())
    assert still_scoring and quick == model.predict_records(["a lovely stay", "a dreadful stay"])
    assert shared == pytest.approx(per_call / 2)  # two calls at once: the queue drains twice as fast
    assert counts == (0, 0)
    # the idle primary model thread took the first batch, the other thread the one that came meanwhile
    assert on_primary == {"slow": True, "a lovely stay": False}
