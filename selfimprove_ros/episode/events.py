"""Episode events: JSON documents on `episode/events` (std_msgs/String).

`start` opens an episode (the recorder opens a bag, controllers start acting), `recording` is the
recorder's acknowledgement (whoever started the episode repeats `start` until it arrives, because
a DDS reader can miss the first messages of a writer it has not fully matched yet), `acting`
is a controller's acknowledgement (the collector waits for the expert's, for the same reason),
`end` closes it with an outcome, `saved` is the recorder's answer naming the bag it wrote,
`refused` is the recorder's word that it cannot record the episode (a full disk: the episode
ends as a fault with that cause), and `labelled` is the reward scorer's, naming the steps-to-go
labels it stored beside it. JSON in a
String keeps the package free of custom message types (ament_python cannot generate them)
while staying readable in `ros2 topic echo` and in every bag.
"""

import json

KINDS = ('start', 'recording', 'acting', 'end', 'saved', 'refused', 'labelled')
REQUIRED = {
    'start': ('episode_id', 'robot', 'task'),
    'recording': ('episode_id', 'path'),
    'acting': ('episode_id', 'controller'),
    'end': ('episode_id', 'outcome'),
    'saved': ('episode_id', 'path'),
    'refused': ('episode_id', 'cause'),
    'labelled': ('episode_id', 'path'),
}


def make_event(kind: str, **fields) -> str:
    """Serialise an event, checking that it carries what its kind requires."""
    event = {'event': kind, **fields}
    validate(event)
    return json.dumps(event, sort_keys=True)


def parse_event(text: str) -> dict:
    """Parse and validate an event; ValueError says what is wrong with it."""
    try:
        event = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f'episode event is not JSON ({error}): {text[:80]!r}') from error
    if not isinstance(event, dict):
        raise ValueError(f'episode event must be a JSON object, got {text[:80]!r}')
    validate(event)
    return event


def validate(event: dict):
    """Raise ValueError unless `event` has a known kind and its required fields."""
    kind = event.get('event')
    if kind not in KINDS:
        raise ValueError(f'episode event kind {kind!r} unknown; expected one of {list(KINDS)}')
    missing = [name for name in REQUIRED[kind] if event.get(name) in (None, '')]
    if missing:
        raise ValueError(f'{kind} event lacks {missing}: {event}')
