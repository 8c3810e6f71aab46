"""Calls from several threads: each gets its own answers, and the GIL is free while the engine
works (one Recognizer runs one call at a time; the others wait for it)."""
import threading
import time

from conftest import image_path

NAMES = ["line_gray.png", "line_rgb.png", "noise_rgba.png", "palette.png", "tiny.png", "wide.jpg"]


def test_concurrent_calls_get_their_own_answers(recognizer):
    expected = {name: recognizer.recognize(image_path(name), num_beams=3).ids for name in NAMES}
    answers, errors = {}, []

    def worker(index):
        try:
            for round_number in range(5):
                name = NAMES[(index + round_number) % len(NAMES)]
                answers[(index, round_number)] = (name, recognizer.recognize(image_path(name), num_beams=3).ids)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(answers) == 30
    for name, ids in answers.values():
        assert ids == expected[name], name


def test_python_threads_run_while_the_engine_works(recognizer):
    # A call long enough to watch: at least 0.3 s.
    images = [image_path(name) for name in NAMES]
    while True:
        started = time.perf_counter()
        recognizer.recognize(images)
        call_seconds = time.perf_counter() - started
        if call_seconds >= 0.3:
            break
        images *= 2
    thread = threading.Thread(target=recognizer.recognize, args=(images,))
    longest_wait, last = 0.0, time.perf_counter()
    thread.start()  # (this, too, would wait for the whole call: start() waits until the thread runs)
    while thread.is_alive():
        now = time.perf_counter()
        longest_wait, last = max(longest_wait, now - last), now
    thread.join()
    # Had the call kept the GIL, this thread would have stood still for about the whole call.
    assert longest_wait < call_seconds / 2, (longest_wait, call_seconds)
