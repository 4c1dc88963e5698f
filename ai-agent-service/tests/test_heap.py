"""HeapTrim: the heap is trimmed once the last message in flight is done, at most once per interval."""

from utils.heap import HeapTrim, _malloc_trim


def test_the_heap_is_trimmed_when_the_last_message_in_flight_is_done_not_before():
    trims = []
    heap = HeapTrim(min_interval_s=60, trim=lambda: trims.append("trim"))
    with heap.working():
        with heap.working():
            pass
        assert trims == []  # one message is still in flight
    assert trims == ["trim"]


def test_within_the_interval_the_heap_is_trimmed_once():
    trims = []
    heap = HeapTrim(min_interval_s=60, trim=lambda: trims.append("trim"))
    for _ in range(3):
        with heap.working():
            pass
    assert trims == ["trim"]

    every_time = HeapTrim(min_interval_s=0, trim=lambda: trims.append("again"))
    for _ in range(2):
        with every_time.working():
            pass
    assert trims == ["trim", "again", "again"]


def test_a_failing_handler_still_counts_as_done():
    trims = []
    heap = HeapTrim(min_interval_s=60, trim=lambda: trims.append("trim"))
    try:
        with heap.working():
            raise ValueError("the handler failed")
    except ValueError:
        pass
    assert trims == ["trim"]


def test_on_glibc_the_trim_is_the_c_librarys_malloc_trim():
    assert _malloc_trim()() in (0, 1)  # glibc's answer: whether memory was released; the fallback gives None
