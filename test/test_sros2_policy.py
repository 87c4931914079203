"""The shipped SROS2 policy names real topics, and only the trainer may announce a policy."""

import os
import xml.etree.ElementTree as ElementTree

from selfimprove_ros.core import topics

POLICY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'config',
                      'sros2', 'station.policy.xml')


def known_names(robot='/aloha1'):
    # Every upper-case string constant of core/topics.py is a topic or service name.
    names = {value for name, value in vars(topics).items()
             if name.isupper() and isinstance(value, str)}
    names |= {topics.camera_topic(cam) for cam in topics.CAMERA_NAMES}
    return {name if name.startswith('/') else f'{robot}/{name}' for name in names} | \
        {'/' + topics.TRAINER_STATUS}


def rules(path=POLICY):
    """Yield (enclave, kind, access, name) for every topic and service rule."""
    for enclave in ElementTree.parse(path).getroot().iter('enclave'):
        for group in enclave.iter():
            if group.tag in ('topics', 'services'):
                for access, allowed in group.attrib.items():
                    for item in group:
                        yield enclave.get('path'), group.tag, access, item.text


def test_every_name_in_the_policy_is_in_the_topic_contract():
    unknown = {name for _, _, _, name in rules() if name not in known_names()}
    assert unknown == set()


def test_only_the_trainer_may_announce_a_policy():
    announcers = {enclave for enclave, kind, access, name in rules()
                  if name == topics.MODEL_ANNOUNCE and access == 'publish'}
    assert announcers == {'/station/trainer'}
