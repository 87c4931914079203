"""RunningEpisode: tick counting by stamps and the end conditions."""

from selfimprove_ros.episode.progress import RunningEpisode

PERIOD_NS = 100_000_000


def feed(episode, ticks, success_at=None):
    for tick in range(ticks):
        if success_at is not None and tick >= success_at:
            episode.success = True
        if episode.observe(5_000 + tick * PERIOD_NS, PERIOD_NS):
            return tick
    return None


def test_success_ends_after_the_margin():
    episode = RunningEpisode('e', max_ticks=80, post_success_ticks=5)
    assert feed(episode, 80, success_at=30) == 35
    assert episode.outcome == 'success' and episode.success_tick == 30


def test_no_success_ends_at_max_ticks_as_timeout():
    episode = RunningEpisode('e', max_ticks=20, post_success_ticks=5)
    assert feed(episode, 50) == 20
    assert episode.outcome == 'timeout' and '20 ticks' in episode.cause


def test_success_just_before_the_limit_is_still_a_success():
    episode = RunningEpisode('e', max_ticks=20, post_success_ticks=5)
    assert feed(episode, 50, success_at=18) == 20
    assert episode.outcome == 'success' and episode.success_tick == 18
