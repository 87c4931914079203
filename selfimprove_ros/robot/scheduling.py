"""Real-time scheduling of a control loop's process (Linux), asked for and never required."""

import os


def request_realtime(priority: int):
    """Run this process under SCHED_FIFO at `priority` (1-99); return (granted, in words).

    A robot's control tick must keep its period while cameras, inference and training share
    the machine; ros2_control's controller manager asks for the same. It needs CAP_SYS_NICE
    (root, or `rtprio` in /etc/security/limits.conf); without it the process keeps normal
    scheduling and the answer says how to grant it. 0 asks for nothing: (True, '').
    """
    if priority == 0:
        return True, ''
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as error:
        return False, (f'real-time priority {priority} refused ({error}); running with '
                       'normal scheduling. Grant it with `@realtime - rtprio 99` in '
                       '/etc/security/limits.conf (and the user in group realtime), or set '
                       'realtime_priority 0')
    return True, f'running under SCHED_FIFO priority {priority}'
