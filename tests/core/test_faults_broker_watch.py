"""console.core.broker_watch: the pure tracker of Mosquitto's dropped-messages counter."""

from __future__ import annotations

from console.core.broker_watch import ALARM_PREFIX, DropWatch, parse_counter


def test_parse_counter() -> None:
    assert parse_counter(b"1234") == 1234
    assert parse_counter(b" 7\n") == 7
    assert parse_counter(b"") is None
    assert parse_counter(b"-1") is None
    assert parse_counter(b"12 messages") is None


def test_baseline_is_not_an_alarm_a_rise_is_and_it_expires() -> None:
    watch = DropWatch(hold_s=60)
    assert watch.observe(500, now=0) == 0  # drops from before we watched
    assert watch.alarm(1) is None
    assert watch.observe(500, now=2) == 0
    assert watch.observe(530, now=3) == 30
    assert watch.observe(540, now=4) == 10
    alarm = watch.alarm(5)
    assert alarm is not None and alarm.startswith(f"{ALARM_PREFIX}: 40 dropped since ")
    assert watch.alarm(63) is not None  # 59 s after the last move
    assert watch.alarm(64) is None  # 60 s without a move
    assert watch.observe(541, now=100) == 1  # a new episode counts afresh
    alarm = watch.alarm(100)
    assert alarm is not None and ": 1 dropped" in alarm


def test_a_restarted_broker_counting_from_zero_is_a_new_baseline() -> None:
    watch = DropWatch()
    watch.observe(900, now=0)
    assert watch.observe(0, now=1) == 0
    assert watch.alarm(1) is None
    assert watch.observe(5, now=2) == 5
