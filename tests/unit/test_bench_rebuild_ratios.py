"""The control-plane bench reads each round's rebuilding p99 against the quiet runs either side
of it, and reports the quiet runs' own ratio as the noise of that figure."""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import pytest

from control_plane import p99_ratios


def test_rebuilding_is_read_against_the_mean_of_the_quiet_runs_either_side() -> None:
    ratios, noise = p99_ratios([2.0, 3.0], [3.3, 3.0], [4.0, 3.0])
    assert ratios == pytest.approx([1.1, 1.0])  # 3.3 ÷ mean(2, 4), 3 ÷ 3
    assert noise == pytest.approx([2.0, 1.0])  # the second quiet run ÷ the first


def test_a_quiet_run_that_completed_nothing_gives_no_ratio() -> None:
    ratios, noise = p99_ratios([0.0, 2.0], [3.0, 2.2], [2.0, 0.0])
    assert len(ratios) == 1 and math.isnan(ratios[0])
    assert noise == [0.0]  # the round whose first quiet run counted: 0 ÷ 2


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError):
        p99_ratios([1.0, 2.0], [1.0], [1.0, 2.0])
