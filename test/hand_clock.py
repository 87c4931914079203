"""A monotonic clock the test moves by hand, for node logic tested without ROS."""


class Clock:
    """Return `now` [s] when called; a test moves it by setting or adding to `now`."""

    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self):
        return self.now
