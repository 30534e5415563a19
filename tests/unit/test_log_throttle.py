"""One line per cause per interval, with a count of what was held back."""

import logging

from fd2.telemetry.log_throttle import ThrottledLog


def test_repeats_within_the_interval_are_counted_not_written(caplog):
    now = [0.0]
    log = ThrottledLog(logging.getLogger("fd2.test.throttle"), 60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="fd2.test.throttle"):
        for project in ("a", "b", "c"):
            log.warning("ct down", "Control Tower down; serving the cached %s", project)
        log.warning("vault down", "vault down")
        now[0] = 61.0
        log.warning("ct down", "Control Tower down; serving the cached %s", "d")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "Control Tower down; serving the cached a",
        "vault down",
        "Control Tower down; serving the cached d (2 more like this in the last 60 s)",
    ]
