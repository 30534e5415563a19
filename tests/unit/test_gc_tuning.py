import gc

from fd2.gc_tuning import tune_gc_for_serving


def test_serving_gc_freezes_startup_objects_and_raises_the_young_threshold():
    before = gc.get_threshold()
    try:
        tune_gc_for_serving()
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
