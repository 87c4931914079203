"""Scripted joint-space expert for the simulated ALOHA tasks.

ACT's scripted policies drive gym-aloha's end-effector scenes through mocap welds, which fail
on recent MuJoCo. This expert plans the same kind of open-loop episode directly in joint space:
it solves inverse kinematics (damped least squares on a private copy of the task model) for a
few Cartesian waypoints of each gripper and interpolates the joints between them at the control
period. The plan depends only on the initial state, so it can be computed once from the first
simulator state and replayed tick by tick.

Open-loop precision comes from modelling the position servos rather than from feedback: the
targets add the gravity droop (torque / kp) and lead the motion by each joint's measured lag.
"""

from dataclasses import dataclass

import mujoco
import numpy as np

from selfimprove_ros.core.joints import LOWER_LIMITS, NUM_JOINTS, START_POSE, UPPER_LIMITS
from selfimprove_ros.sim.aloha_sim import (
    SIM_CONTROL_DT_S, TASKS, joints_from_qpos, task_xml_path)
from selfimprove_ros.sim.kinematics import ARM_QPOS_ADR as _ARM_ADR, TCP_OFFSET_M as _TCP

# Resting heights of the object centres [m]: a reset drops them from z=0.05, so the initial
# qpos may not have settled yet and only its x, y are used.
_REST_Z = {'box': 0.02, 'peg': 0.01, 'socket': 0.022}
_OPEN, _CLOSED = 1.0, 0.0
_DOWN = np.pi / 2  # pitch of a gripper pointing straight down
# How far ahead [s] each joint is commanded. The servos trail a moving target, the waist and
# shoulder most (friction loss high for their gain): lags measured on ramps, the same at 0.02
# and 0.1 s ticks. Without the lead the socket misses the peg by ~1 cm.
_LEAD_S = np.tile([0.15, 0.08, 0.02, 0.07, 0.02, 0.0, 0.0], 2)
# Knot spacing [s] of the injected noise: a slow drift, like a hesitant operator.
_NOISE_KNOT_S = 0.4
_ARM = np.tile([1.0] * 6 + [0.0], 2)  # mask of the arm joints (no grippers)


@dataclass
class ExpertConfig:
    """Configuration of the scripted expert."""

    task: str = 'transfer_cube'
    # One robot tick [s]; the plan has one joint target per tick.
    control_period_s: float = 0.1
    # Std of the smooth perturbation of the arm joint targets [rad]; 0 is the clean expert.
    noise_std: float = 0.0
    noise_seed: int = 0

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f'task={self.task!r} is not a sim task; choose one of {list(TASKS)}')
        steps = self.control_period_s / SIM_CONTROL_DT_S
        if not self.control_period_s > 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(f'control_period_s={self.control_period_s} must be a positive '
                             f'multiple of the simulator step {SIM_CONTROL_DT_S} s')
        if not 0.0 <= self.noise_std <= 0.5:
            raise ValueError(f'noise_std={self.noise_std} must be in [0, 0.5] rad')
        seed = self.noise_seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'noise_seed={self.noise_seed!r} must be a non-negative integer')


def _rot(side, pitch, roll=0.0):
    """World orientation of a gripper facing away from its base, pitched down, then rolled."""
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    # The right arm's base faces the left one: its frame is turned half a turn about z.
    rz = np.diag([1.0, 1.0, 1.0] if side == 'left' else [-1.0, -1.0, 1.0])
    return rz @ ry @ rx


class _ArmIK:
    """Damped-least-squares inverse kinematics of the grasp points, on a private model."""

    def __init__(self, task):
        self.model = mujoco.MjModel.from_xml_path(task_xml_path(task))
        self.data = mujoco.MjData(self.model)
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def solve(self, side, q_seed, pos, rot, iterations=300, damping=0.03):
        """Return the 6 arm joints that put the grasp point at `pos` with orientation `rot`."""
        adr = _ARM_ADR[side]
        cols = slice(adr, adr + 6)
        low, high = self.model.jnt_range[cols].T
        body = self.model.body(f'vx300s_{side}/gripper_link').id
        q = np.array(q_seed, dtype=np.float64)
        quat, err_rot = np.empty(4), np.empty(3)
        for _ in range(iterations):
            self.data.qpos[cols] = q
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
            cur = self.data.xmat[body].reshape(3, 3)
            tcp = self.data.xpos[body] + cur @ _TCP
            mujoco.mju_mat2Quat(quat, (rot @ cur.T).ravel())
            mujoco.mju_quat2Vel(err_rot, quat, 1.0)
            # An orientation error of 1 rad weighs like 10 cm of position error.
            err = np.concatenate([pos - tcp, 0.1 * err_rot])
            if np.linalg.norm(err) < 1e-5:
                break
            mujoco.mj_jac(self.model, self.data, self._jacp, self._jacr, tcp, body)
            jac = np.vstack([self._jacp[:, cols], 0.1 * self._jacr[:, cols]])
            step = jac.T @ np.linalg.solve(jac @ jac.T + damping ** 2 * np.eye(6), err)
            q = np.clip(q + np.clip(step, -0.2, 0.2), low, high)
        if np.linalg.norm(err) > 1e-3:
            raise RuntimeError(f'no IK solution puts the {side} gripper at {np.round(pos, 3)} '
                               f'(residual {np.linalg.norm(err):.4f})')
        return q

    def lag_cap(self, side):
        """Largest lag [rad] of one arm's servos: friction loss / kp, once the friction slips."""
        cols = slice(_ARM_ADR[side], _ARM_ADR[side] + 6)
        return self.model.dof_frictionloss[cols] / self.model.actuator_gainprm[cols, 0]

    def gravity_offset(self, side, q):
        """Target offset [rad] that cancels one arm's servo droop under gravity at `q`."""
        cols = slice(_ARM_ADR[side], _ARM_ADR[side] + 6)
        self.data.qpos[cols] = q
        self.data.qvel[:] = 0
        mujoco.mj_forward(self.model, self.data)
        # A position servo settles where kp * error balances the gravity torque.
        return self.data.qfrc_bias[cols] / self.model.actuator_gainprm[cols, 0]


def _pick_and_carry(grasp, carry):
    """Waypoints that grasp an object from straight above at `grasp` and carry it to `carry`.

    Top-down grasps hold best: the objects creep down soft-contact finger pads while the arm
    moves, least so with the pads vertical. Each waypoint is (time [s], grasp point [m],
    pitch, roll, gripper).
    """
    return [
        (1.6, grasp + [0, 0, 0.1], _DOWN, 0.0, _OPEN),
        (2.2, grasp, _DOWN, 0.0, _OPEN),
        (2.6, grasp, _DOWN, 0.0, _CLOSED),
        (3.4, grasp + [0, 0, 0.06], _DOWN, 0.0, _CLOSED),   # straight up, off the table
        (4.6, carry, _DOWN, 0.0, _CLOSED),
    ]


def _transfer_cube_waypoints(qpos):
    """Right arm picks the box and lifts it; the left takes it over from the side."""
    # Fingertips 6 mm above the table; the box hangs just below the right grasp point.
    box = np.array([qpos[16], qpos[17], _REST_Z['box'] + 0.005])
    meet = np.array([0.05, 0.5, 0.22])
    held = meet - [0, 0, 0.005]
    right = _pick_and_carry(box, meet) + [
        (6.0, meet, _DOWN, 0.0, _CLOSED),                   # until the left has closed
        (6.3, meet, _DOWN, 0.0, _OPEN),
        (7.0, meet + [0.06, 0, 0.04], _DOWN, 0.0, _OPEN),   # back off
    ]
    # The left gripper comes in level, rolled so that its fingers close on the box's top and
    # bottom: their narrow tips fit between the right fingers, which hold the sides.
    side = (0.0, np.pi / 2)
    left = [
        (2.0, held - [0.12, 0, 0], *side, _OPEN),
        (4.4, held - [0.12, 0, 0], *side, _OPEN),           # wait for the box to arrive
        (5.6, held, *side, _OPEN),
        (6.0, held, *side, _CLOSED),
        (6.3, held, *side, _CLOSED),
        (7.0, held - [0.1, 0, 0], *side, _CLOSED),
    ]
    return left, right, 7.0


def _insertion_waypoints(qpos):
    """Right arm grasps the peg, left arm the socket; both lift and the socket goes on."""
    peg_grip = [0, 0, 0.012]  # grasp point above the peg's centre: fingertips off the table
    peg = np.array([qpos[16], qpos[17], _REST_Z['peg']]) + peg_grip
    socket = np.array([qpos[23], qpos[24], _REST_Z['socket']])
    # The right arm holds the peg still and the left slides the socket over it: the thin peg
    # sits looser in its grip and would creep down the fingers if it moved. The peg's tip
    # touches the pin once the socket's centre is 0.10 m from the peg's; aim 1 cm further, and
    # 3 mm low: the peg tilts tip-down in its grip by ~2 degrees on the way.
    peg_meet = np.array([0.05, 0.5, 0.15])
    right = _pick_and_carry(peg, peg_meet + peg_grip) + [
        (7.0, peg_meet + peg_grip, _DOWN, 0.0, _CLOSED)]
    socket_in = peg_meet - [0.09, 0, 0.003]
    left = _pick_and_carry(socket, socket_in - [0.11, 0, 0]) + [
        (5.8, socket_in, _DOWN, 0.0, _CLOSED),
        (7.0, socket_in, _DOWN, 0.0, _CLOSED)]
    return left, right, 7.0


_WAYPOINTS = {'transfer_cube': _transfer_cube_waypoints, 'insertion': _insertion_waypoints}


def _eased(t, knot_t, knots):
    """Interpolate `knots` [K, n] at times `t` with smoothstep easing: no velocity jumps."""
    i = np.clip(np.searchsorted(knot_t, t, side='right') - 1, 0, len(knot_t) - 2)
    s = np.clip((t - knot_t[i]) / (knot_t[i + 1] - knot_t[i]), 0.0, 1.0)
    s = s * s * (3.0 - 2.0 * s)
    return knots[i] + s[:, None] * (knots[i + 1] - knots[i])


class ScriptedExpert:
    """Open-loop scripted demonstrations of a sim task, as 14-joint targets per control tick."""

    def __init__(self, config: ExpertConfig):
        self.config = config
        self._ik = _ArmIK(config.task)
        self._plan = None
        self._intended = None

    def plan(self, full_qpos, episode_seed: int = 0) -> np.ndarray:
        """Plan the episode from its initial full qpos; return [T, 14] joint targets.

        The objects' x, y place the grasps; the arms start from their joints in `full_qpos`.
        The noise is drawn from (noise_seed, episode_seed): every episode of a collection run
        is perturbed differently (the same pattern in every demonstration would be learnt as
        part of the task rather than recovered from), yet any episode can be replayed.
        """
        qpos = np.asarray(full_qpos, dtype=np.float64)
        if qpos.shape != (self._ik.model.nq,):
            raise ValueError(f'full_qpos has shape {qpos.shape}; task {self.config.task!r} '
                             f'needs ({self._ik.model.nq},)')
        left, right, duration = _WAYPOINTS[self.config.task](qpos)
        start = joints_from_qpos(qpos)
        dt = self.config.control_period_s
        # A target is held for a whole tick, so it is the plan at the tick's middle.
        tick_t = dt * (np.arange(int(round(duration / dt))) + 0.5)
        plan = np.empty((len(tick_t), NUM_JOINTS))
        for side, first, points in (('left', 0, left), ('right', 7, right)):
            # Seeding IK from the start pose keeps every solution on the same elbow-up branch.
            q = START_POSE[first:first + 6]
            knot_t, knots = [0.0], [start[first:first + 7]]
            for t, pos, pitch, roll, grip in points:
                q = self._ik.solve(side, q, pos, _rot(side, pitch, roll))
                knot_t.append(t)
                knots.append(np.append(q + self._ik.gravity_offset(side, q), grip))
            knot_t, knots = np.array(knot_t), np.array(knots)
            now = _eased(tick_t, knot_t, knots)
            ahead = np.column_stack([
                _eased(tick_t + _LEAD_S[first + j], knot_t, knots[:, j:j + 1])[:, 0]
                for j in range(7)])
            # A lead beyond the lag the servo can have would only bend fast moves off course.
            cap = np.append(self._ik.lag_cap(side), np.inf)
            plan[:, first:first + 7] = now + np.clip(ahead - now, -cap, cap)
        # The noise-free plan is what the expert meant; the arm executes the perturbed one, so
        # labels from the intended plan say how to recover from the drift (DART's idea).
        self._intended = np.clip(plan, LOWER_LIMITS, UPPER_LIMITS)
        plan = plan + self._noise(tick_t, episode_seed) * _ARM
        self._plan = np.clip(plan, LOWER_LIMITS, UPPER_LIMITS)
        return self._plan.copy()

    def _noise(self, tick_t, episode_seed: int):
        """Smooth Gaussian drift at `tick_t`: random knots every 0.4 s, eased in between.

        The knots sit at fixed times, so a seed perturbs the same way at any control period;
        the first knot is zero, so the plan still starts from the current pose.
        """
        if self.config.noise_std == 0:
            return np.zeros((len(tick_t), NUM_JOINTS))
        rng = np.random.default_rng((self.config.noise_seed, episode_seed))
        knot_t = np.arange(0.0, tick_t[-1] + 2 * _NOISE_KNOT_S, _NOISE_KNOT_S)
        knots = rng.normal(0.0, self.config.noise_std, (len(knot_t), NUM_JOINTS))
        knots[0] = 0.0
        return _eased(tick_t, knot_t, knots)

    def act(self, tick: int) -> np.ndarray:
        """Return the planned target for `tick`; the last one is held after the plan ends."""
        if self._plan is None:
            raise RuntimeError('plan() must be given the initial state before act()')
        if tick < 0:
            raise ValueError(f'tick={tick} must be non-negative')
        return self._plan[min(tick, len(self._plan) - 1)].copy()

    def intended(self, tick: int) -> np.ndarray:
        """Return the noise-free target for `tick`: what `act` would be without the noise."""
        self.act(tick)  # the same checks
        return self._intended[min(tick, len(self._intended) - 1)].copy()

    @property
    def episode_ticks(self) -> int:
        """Number of ticks of the planned episode (0 before plan())."""
        return 0 if self._plan is None else len(self._plan)
