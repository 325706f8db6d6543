"""Tiny envs for the tests, registered on import: `--env-id toy_envs:ToyChain-v0` (with tests/ on PYTHONPATH).

Their observations say where they come from, so every stored transition can be checked by arithmetic.
"""

import os

import gymnasium as gym
import numpy as np

TERMINATE_AT = 4  # even-numbered episodes terminate after this many steps
MAX_STEPS = 6  # odd-numbered episodes run into the time limit (truncation) after this many


class ToyChain(gym.Env):
    """obs = [t, episode index]; reward 1 a step; even episodes terminate at t = 4, odd ones are truncated at t = 6.

    Environment variables for fault injection, read once per env: `TOY_SIGNAL_AT=N:SIG` sends signal SIG
    to this process at the env's N-th step; `TOY_NAN_AT=N` returns a NaN reward at the N-th step.
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.episode, self.t, self.steps = -1, 0, 0
        signal_at = os.environ.get("TOY_SIGNAL_AT")
        self.signal_at = tuple(int(x) for x in signal_at.split(":")) if signal_at else None
        self.nan_at = int(os.environ.get("TOY_NAN_AT", 0))

    def obs(self):
        return np.array([self.t, self.episode], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self.obs(), {}

    def step(self, action):
        self.t += 1
        self.steps += 1
        if self.signal_at and self.steps == self.signal_at[0]:
            os.kill(os.getpid(), self.signal_at[1])
        reward = float("nan") if self.steps == self.nan_at else 1.0
        terminated = self.episode % 2 == 0 and self.t == TERMINATE_AT
        return self.obs(), reward, terminated, False, {}


class ToyBandit(gym.Env):
    """A contextual bandit: obs is one of four one-hot contexts, drawn at random; the action equal to it pays 1, any
    other 0, and the episode ends. A policy that learns pays 1 every time; one that acts with stale weights does not."""

    observation_space = gym.spaces.Box(0, 1, (4,), np.float32)
    action_space = gym.spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.context = int(self.np_random.integers(4))
        return np.eye(4, dtype=np.float32)[self.context], {}

    def step(self, action):
        return np.eye(4, dtype=np.float32)[self.context], float(action == self.context), True, False, {}


class ToyShiftedActions(ToyChain):
    """ToyChain whose actions are {1, 2}: a Discrete space that does not start at 0."""

    action_space = gym.spaces.Discrete(2, start=1)


gym.register("ToyChain-v0", entry_point=ToyChain, max_episode_steps=MAX_STEPS)
gym.register("ToyBandit-v0", entry_point=ToyBandit)
gym.register("ToyShiftedActions-v0", entry_point=ToyShiftedActions, max_episode_steps=MAX_STEPS)
gym.register("ToyContinuous-v0", entry_point="gymnasium.envs.classic_control:PendulumEnv", max_episode_steps=10)
# Breakout with a time limit of 600 frames (150 agent steps): short runs see truncations, game overs and lost lives.
gym.register(
    "ToyBreakout-v0",
    entry_point="ale_py.env:AtariEnv",
    kwargs=dict(game="breakout", obs_type="rgb", frameskip=1, repeat_action_probability=0.0),
    max_episode_steps=600,
)
gym.register(  # another flavour of the game: a mode the vector env cannot play
    "ToyBreakoutMode-v0",
    entry_point="ale_py.env:AtariEnv",
    kwargs=dict(game="breakout", obs_type="rgb", frameskip=1, repeat_action_probability=0.0, mode=4),
)
gym.register(  # the same game's RAM as observations: not a screen
    "ToyBreakoutRam-v0",
    entry_point="ale_py.env:AtariEnv",
    kwargs=dict(game="breakout", obs_type="ram", frameskip=1, repeat_action_probability=0.0),
)
