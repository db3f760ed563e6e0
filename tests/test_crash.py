"""Crash safety: SIGKILL `rq ingest`, `rq done` and `rq todo` at random moments; nothing may be
left half-written. The harness is tests/support/crash.py (benchmarks/stress_crash.py runs it
bigger, and also kills `rq index`)."""

from support.crash import stress


def test_random_kills_leave_a_usable_archive_and_an_intact_queue(tmp_path, http_server):
    lines = []
    report = stress(kills=10, seed=11, pages=20, with_index=False, workdir=tmp_path, server=http_server,
                    log=lines.append, max_attempts=40)
    assert report.failures == [], "\n".join(report.summary_lines() + lines)
    assert report.kills == 10  # every one a real SIGKILL (exit -9) of a running command
    assert report.kills_by_command["ingest"] >= 1
    assert report.kills_by_command["done"] + report.kills_by_command["todo"] >= 1
    assert report.final["documents"] == "20 (20 with text)"
