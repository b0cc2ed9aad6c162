"""What the multi-process Python tests share: waiting for a condition without assuming how fast
the machine is (the machines that run the tests are shared and noisy)."""
import time


def eventually(check, what, timeout=30):
    """Calls check() every 0.1 s until it returns something true, and returns that; fails the
    test with `what` if that takes longer than timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
