"""Episode events (episode/events.py): make_event and parse_event refuse what is incomplete."""

import json

import pytest

from selfimprove_ros.episode.events import make_event, parse_event


def test_events_round_trip_and_reject_incomplete():
    text = make_event('start', episode_id='e1', robot='aloha1', task='transfer_cube', seed=3)
    assert parse_event(text)['seed'] == 3
    with pytest.raises(ValueError, match='lacks'):
        make_event('end', episode_id='e1')
    with pytest.raises(ValueError, match='lacks'):
        make_event('recording', episode_id='e1')
    with pytest.raises(ValueError, match='unknown'):
        parse_event(json.dumps({'event': 'explode'}))
    with pytest.raises(ValueError, match='not JSON'):
        parse_event('{nope')
