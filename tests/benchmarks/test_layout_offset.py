"""benchmarks/layout_offset.py: its spread on known runs, its workload, and real processes."""

from __future__ import annotations

import pytest

from benchmarks.layout_offset import ProcessRun, main, run_process, spread, workload


def test_processes_apart_by_more_than_their_noise_show_a_between_process_spread() -> None:
    runs = [ProcessRun(False, (m - 0.01, m, m + 0.01)) for m in (3.2, 3.4, 3.6)]
    s = spread(runs)
    assert s.processes == 3
    assert s.median_ms == pytest.approx(3.4)
    assert s.between_sd == pytest.approx(0.2 / 3.4)
    assert s.within_sd == pytest.approx(0.01 / 3.4)


def test_a_spread_needs_two_processes_of_two_repetitions() -> None:
    with pytest.raises(ValueError, match="got 1"):
        spread([ProcessRun(True, (1.0, 1.1))])
    with pytest.raises(ValueError, match="2\\+ repetitions"):
        spread([ProcessRun(True, (1.0,)), ProcessRun(True, (1.0, 1.1))])


def test_the_workload_is_seeded_and_uses_the_batch_sizes() -> None:
    assert workload(3, 50) == workload(3, 50)
    assert workload(3, 50) != workload(4, 50)
    assert {len(b) for b in workload(3, 200)} <= {1, 2, 3, 4, 6, 8, 12}
    assert all(3 <= len(text.split()) <= 24 for b in workload(3, 20) for text in b)


def test_bad_arguments_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--processes", "1"])
    assert exit_.value.code == 2
    assert "--processes 1" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("fixed", [False, True])
def test_a_fresh_process_measures_the_model_in_the_layout_asked_for(fixed: bool) -> None:
    # run_process checks the child's /proc/self/personality against the layout asked for
    run = run_process(fixed, seed=1, batches=5, reps=2)
    assert run.fixed_layout is fixed
    assert len(run.reps_ms) == 2
    assert all(0 < ms < 1000 for ms in run.reps_ms)
