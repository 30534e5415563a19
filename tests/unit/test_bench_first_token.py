"""bench/first_token.py's reading of a `perf script` trace: a stream's two legs, and who ran on
the server core during each (the tool itself needs perf and root; its parser does not)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from first_token import legs, parse

_LOOP, _IO = 500, 501


def _switch(at_s: float, cpu: int, comm: str, pid: int) -> str:
    return (
        f"     somebody     7 [{cpu:03d}] {at_s:.6f}:     sched:sched_switch: prev_comm=x "
        f"prev_pid=7 prev_prio=120 prev_state=S ==> next_comm={comm} next_pid={pid} next_prio=120"
    )


def _call(at_s: float, comm: str, tid: int, number: int, result: int | None = None) -> str:
    if result is None:
        return f"{comm:>16} {tid:5d} [001] {at_s:.6f}: raw_syscalls:sys_enter: NR {number} (5, 0)"
    return f"{comm:>16} {tid:5d} [001] {at_s:.6f}:  raw_syscalls:sys_exit: NR {number} = {result}"


def _one_stream(t0: float) -> list[str]:
    """A request written at t0; fd2's core wakes 50 µs later, its I/O thread runs 40 µs, the
    loop 200 µs; the stand-in reads it at +300 µs and writes the first chunk at +50 ms; the
    core wakes 100 µs later, the loop relays for 150 µs, the I/O thread writes for 50 µs."""
    chunk = t0 + 0.050
    return [
        _call(t0, "loadgen", 10, 1),
        _switch(t0 + 0.000050, 0, "tokio-rt-worker", _IO),
        _switch(t0 + 0.000090, 0, "fd2", _LOOP),
        _switch(t0 + 0.000290, 0, "swapper/0", 0),
        _call(t0 + 0.000300, "standin", 20, 0, 300),
        _call(t0 + 0.000301, "standin", 20, 1),  # the headers: too early to be the first chunk
        _call(t0 + 0.000400, "loadgen", 10, 0, 120),  # the headers arrive
        _call(t0 + 0.000401, "loadgen", 10, 0, -11),  # EAGAIN: not a read
        _call(chunk, "standin", 20, 1),
        _switch(chunk + 0.000100, 0, "fd2", _LOOP),
        _switch(chunk + 0.000250, 0, "tokio-rt-worker", _IO),
        _switch(chunk + 0.000300, 0, "swapper/0", 0),
        _call(chunk + 0.000320, "loadgen", 10, 0, 90),
    ]


def test_each_stream_gives_its_two_legs_and_who_ran_in_them() -> None:
    text = "\n".join(_one_stream(100.0) + _one_stream(100.2) + ["garbage line"])
    found = legs(parse(text), core=0, roles={_LOOP: "event loop", _IO: "Granian I/O"})
    assert found.request == pytest.approx([300.0, 300.0])
    assert found.chunk == pytest.approx([320.0, 320.0])
    request, chunk = found.request_by[0], found.chunk_by[0]
    assert request["event loop"] == pytest.approx(200.0)
    assert request["Granian I/O"] == pytest.approx(40.0)
    assert chunk["event loop"] == pytest.approx(150.0)
    assert chunk["Granian I/O"] == pytest.approx(50.0)
    # Asleep until woken (100 µs), then after the I/O thread until the client read (20 µs).
    assert chunk["idle"] == pytest.approx(120.0)


def test_a_stream_whose_first_chunk_never_came_is_left_out() -> None:
    cut = _one_stream(100.0)[:8]  # no first chunk, no read of it
    found = legs(parse("\n".join(cut + _one_stream(101.0))), core=0, roles={})
    assert len(found.request) == 1
