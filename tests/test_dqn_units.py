"""Unit tests of the pure helpers of dqn.py and double_dqn.py (and those dqn_atari.py shares): values by hand."""

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import SCRIPTS, load_script, stored_rows
from edits import EDITS


@pytest.fixture(scope="module", params=SCRIPTS)
def script(request):
    return load_script(request.param)


@pytest.fixture(scope="module", params=[*SCRIPTS, "dqn_atari.py"])
def any_script(request):
    """For the helpers all three scripts define alike: each copy is tested, since a bug can enter any one."""
    return load_script(request.param)


def test_linear_schedule_values(any_script):
    f = any_script.linear_schedule
    assert f(1.0, 0.05, 1000, 0) == 1.0
    assert f(1.0, 0.05, 1000, 500) == pytest.approx(0.525)
    assert f(1.0, 0.05, 1000, 1000) == pytest.approx(0.05)
    assert f(1.0, 0.05, 1000, 10**6) == 0.05
    assert f(0.5, 0.5, 10, 3) == 0.5


def test_lr_scale_at_values(script):
    f = script.lr_scale_at
    assert f(0.2, 0.0, 50_000, 0) == f(0.2, 0.0, 50_000, 40_000) == 1.0  # constant for the first 80%
    assert f(0.2, 0.0, 50_000, 45_000) == pytest.approx(0.5)
    assert f(0.2, 0.0, 50_000, 47_500) == pytest.approx(0.25)
    assert f(0.2, 0.0, 50_000, 50_000) == f(0.2, 0.0, 50_000, 50_007) == 0.0  # N envs may step past the end
    assert f(0.0, 0.0, 50_000, 50_007) == f(0.0, 0.25, 50_000, 50_007) == 1.0  # decay 0: constant to the end, past it
    assert f(1e-17, 0.0, 50_000, 50_002) == 0.0  # (1 - fraction) * total rounds to total: no division by zero
    assert f(1.0, 0.0, 100, 25) == pytest.approx(0.75)  # 1: falling from the first step
    # zero_fraction: the fall ends early, at (1 - 0.25) * 70k = 52.5k, from 14k; 0 for the last quarter
    assert f(0.8, 0.25, 70_000, 14_000) == 1.0
    assert f(0.8, 0.25, 70_000, 33_250) == pytest.approx(0.5)
    assert f(0.8, 0.25, 70_000, 52_500) == f(0.8, 0.25, 70_000, 69_999) == 0.0
    assert f(0.2, 0.5, 100, 49) == 1.0 and f(0.2, 0.5, 100, 50) == 0.0  # zero_fraction >= decay_fraction: a step


@pytest.mark.parametrize("num_envs", [1, 2, 3, 7, 8])
@pytest.mark.parametrize("every", [1, 4, 10, 500])
def test_events_due_counts_env_steps_for_any_num_envs(any_script, num_envs, every):
    """Over a run, events fire once per multiple of `every` past `start`, whatever num_envs is."""
    start, total, fired, step = 100, 3000, 0, 0
    while step < total:
        prev, step = step, step + num_envs
        fired += any_script.events_due(prev, step, every, start)
    assert fired == step // every - start // every


def test_events_due_small_cases(any_script):
    f = any_script.events_due
    assert f(9, 12, 10) == 1  # 10 lies in (9, 12]
    assert f(10, 13, 10) == 0
    assert f(0, 40, 10) == 4
    assert f(195, 205, 10, start=200) == 0  # 200 itself is not past the start
    assert f(195, 210, 10, start=200) == 1


def test_explore_actions_are_uniform_and_only_below_epsilon(any_script):
    u = np.array([0.0, 0.049, 0.05, 0.07, np.nextafter(0.1, 0), 0.1, 0.9])
    explore, actions = any_script.explore_actions(u, 0.1, 4)
    assert explore.tolist() == [True, True, True, True, True, False, False]
    assert actions[explore].tolist() == [0, 1, 2, 2, 3]  # floor(u / 0.1 * 4); u just below epsilon stays in range
    u = np.random.default_rng(0).random(200_000)
    explore, actions = any_script.explore_actions(u, 0.2, 4)
    assert explore.mean() == pytest.approx(0.2, abs=0.005)
    assert np.bincount(actions[explore], minlength=4) / explore.sum() == pytest.approx([0.25] * 4, abs=0.01)
    assert not any_script.explore_actions(u, 0.0, 4)[0].any()  # epsilon 0: always greedy


def test_td_target_terminated_and_truncated(any_script):
    rewards = torch.tensor([1.0, 2.0, 3.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])  # the third is a truncation: it still bootstraps
    next_values = torch.tensor([10.0, 20.0, 30.0])
    target = any_script.td_target(rewards, terminated, next_values, torch.full((3,), 0.9))
    assert torch.equal(target, torch.tensor([1.0 + 9.0, 2.0, 3.0 + 27.0]))


def test_td_target_discounts_each_sample_by_its_own_steps(script):
    """n-step rows: the bootstrap is discounted by gamma ** k, k the steps the stored return sums."""
    target = script.td_target(torch.ones(3), torch.zeros(3), torch.full((3,), 8.0), torch.tensor([0.5, 0.25, 0.125]))
    assert torch.equal(target, torch.tensor([5.0, 3.0, 2.0]))


def test_td_target_refuses_mismatched_shapes(any_script):
    with pytest.raises(AssertionError):
        any_script.td_target(torch.zeros(4), torch.zeros(4), torch.zeros(4, 1), torch.full((4,), 0.99))


def linear_net(weight) -> nn.Module:
    """A Q-network whose Q-values are `weight @ obs`, for targets computed by hand."""
    net = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(weight, dtype=torch.float32))
    return net


# Online net prefers action 1 in s' = [1, 0]; the target net scores actions [5, 2, 9] there.
ONLINE = linear_net([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]])
TARGET = linear_net([[5.0, 0.0], [2.0, 0.0], [9.0, 0.0]])
NEXT_OBS = torch.tensor([[1.0, 0.0]])


@pytest.mark.parametrize("name", ["dqn.py", "dqn_atari.py"])
def test_dqn_next_value_is_target_max(name):
    dqn = load_script(name)
    assert torch.equal(dqn.next_state_value(ONLINE, TARGET, NEXT_OBS), torch.tensor([9.0]))  # td_target: its own tests


def test_double_dqn_next_value_is_target_at_online_argmax():
    double = load_script("double_dqn.py")
    # argmax of the online net is action 1; the target net values it at 2 (DQN would take 9).
    assert torch.equal(double.next_state_value(ONLINE, TARGET, NEXT_OBS), torch.tensor([2.0]))


def test_soft_update_arithmetic(any_script):
    target, online = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        for p in target.parameters():
            p.fill_(1.0)
        for p in online.parameters():
            p.fill_(5.0)
    any_script.soft_update(target, online, 0.25)
    assert all(torch.equal(p, torch.full_like(p, 2.0)) for p in target.parameters())  # 0.25 * 5 + 0.75 * 1
    with torch.no_grad():
        online.weight.copy_(torch.tensor([[0.1234567, -3.3e-7]]))
    any_script.soft_update(target, online, 1.0)
    assert all(
        torch.equal(p, q) for p, q in zip(target.parameters(), online.parameters(), strict=True)
    )  # tau = 1: exact copy


def test_soft_update_moves_buffers_too(any_script):
    """A BatchNorm edit: the target's running statistics follow the online ones as its weights do; counts are copied."""
    target, online = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        online.running_mean.fill_(4.0)
        online.num_batches_tracked.fill_(7)
    any_script.soft_update(target, online, 0.25)
    assert torch.equal(target.running_mean, torch.full((3,), 1.0))  # 0.25 * 4 + 0.75 * 0
    assert torch.equal(target.running_var, torch.ones(3)) and target.num_batches_tracked.item() == 7


def one_step_buffer(script, capacity, num_envs=1):
    """A buffer of one-step transitions (n_step 1), gamma 0.9: one row per env and vector step."""
    return script.ReplayBuffer(capacity=capacity, obs_dim=2, num_envs=num_envs, n_step=1, gamma=0.9)


def fill(buffer, steps, num_envs, first_step=0):
    """Add `steps` vector steps whose obs encode (step, env): obs = [10 * step + env, -1], next_obs = obs + 1."""
    for step in range(first_step, first_step + steps):
        obs = np.stack([10 * step + np.arange(num_envs), np.full(num_envs, -1)], axis=1).astype(np.float32)
        terminated = obs[:, 0] % 2 == 0
        buffer.add(obs, obs + 1, np.arange(num_envs) % 3, obs[:, 0] / 2, terminated, np.zeros(num_envs, bool))


def test_replay_buffer_stores_and_wraps(script):
    rb = one_step_buffer(script, capacity=7, num_envs=3)
    fill(rb, steps=4, num_envs=3)  # 12 transitions into 7 slots: the first 5 are overwritten
    stored = sorted(row[0] for row in stored_rows(rb))
    assert stored == sorted([10 * s + e for s in range(4) for e in range(3)][5:])


def test_replay_buffer_sample_rows_are_whole_transitions(script):
    rb = one_step_buffer(script, capacity=50, num_envs=2)
    fill(rb, steps=20, num_envs=2)  # 40 of 50 rows: an empty row drawn would fail next_obs == obs + 1
    batch = rb.sample(256, np.random.default_rng(0), torch.device("cpu"))
    assert batch["obs"].shape == (256, 2) and batch["actions"].shape == (256,) and batch["actions"].dtype == torch.long
    assert torch.equal(batch["next_obs"], batch["obs"] + 1)
    assert torch.equal(batch["rewards"], batch["obs"][:, 0] / 2)
    assert torch.equal(batch["terminated"], (batch["obs"][:, 0] % 2 == 0).float())
    assert torch.equal(batch["discounts"], torch.full((256,), 0.9))  # one step: gamma
    assert torch.equal(batch["actions"], batch["obs"][:, 0].long() % 10 % 3)  # env index e picks action e % 3
    assert set(batch["obs"][:, 0].long().tolist()) <= {10 * s + e for s in range(20) for e in range(2)}
    assert len(set(batch["obs"][:, 0].tolist())) > 30  # uniform over the 40 stored, not a few


def test_replay_buffer_n_step_rows_by_hand(script):
    """n = 3, gamma = 0.5, two envs, obs [10 * step + env, env], next_obs obs + 100, env 0's rewards 2 ** step:
    env 0 terminates at step 3 and env 1 is truncated at step 1, so both flush what they hold then."""
    rb, obs = script.ReplayBuffer(capacity=50, obs_dim=2, num_envs=2, n_step=3, gamma=0.5), np.zeros((2, 2), np.float32)
    for step in range(6):
        obs[:] = [[10 * step, 0], [10 * step + 1, 1]]  # one array, rewritten in place as an env may do
        ended = [np.array([step == 3, False]), np.array([False, step == 1])]  # terminated, truncated
        rb.add(obs, obs + 100, np.array([step % 2, 1]), np.array([2.0**step, 1.0]), *ended)
    rows = [  # obs, next_obs, action, reward, terminated, discount; in the order the steps complete them
        [1, 1, 111, 101, 1, 1 + 0.5, 0, 0.25],  # env 1's truncation: two rows, both bootstrapping from its final obs
        [11, 1, 111, 101, 1, 1, 0, 0.5],
        [0, 0, 120, 100, 0, 1 + 0.5 * 2 + 0.25 * 4, 0, 0.125],  # env 0's first 3 steps
        [10, 0, 130, 100, 1, 2 + 0.5 * 4 + 0.25 * 8, 1, 0.125],  # env 0's termination: three rows, none bootstraps
        [20, 0, 130, 100, 0, 4 + 0.5 * 8, 1, 0.25],
        [30, 0, 130, 100, 1, 8, 1, 0.5],
        [21, 1, 141, 101, 1, 1 + 0.5 + 0.25, 0, 0.125],  # env 1's new episode
        [31, 1, 151, 101, 1, 1.75, 0, 0.125],
    ]  # env 0's steps 4 and 5 wait for a third
    assert stored_rows(rb) == {tuple(row) for row in rows}


def test_replay_buffer_step_both_terminated_and_truncated_does_not_bootstrap(script):
    """A last step that is both terminated and truncated ends bootstrapping for every row it flushes."""
    rb = script.ReplayBuffer(capacity=10, obs_dim=2, num_envs=1, n_step=3, gamma=0.5)
    for step, ended in enumerate([False, True]):
        obs = np.array([[step, 0]], dtype=np.float32)
        rb.add(obs, obs + 100, np.array([0]), np.array([2.0]), np.array([ended]), np.array([ended]))
    rows = [(0, 0, 101, 100, 0, 2 + 0.5 * 2, 1, 0.25), (1, 0, 101, 100, 0, 2, 1, 0.5)]
    assert stored_rows(rb) == set(rows)


def test_replay_buffer_n_step_lowered_mid_run_stores_at_once(script):
    """A schedule that lowers n (rb.n_step = 1 with two steps pending) flushes what is pending at the next step, then
    stores one-step rows (a `len == n` test would wait for the episode's end). Read through sample()."""
    rb = script.ReplayBuffer(capacity=10, obs_dim=2, num_envs=1, n_step=3, gamma=0.5)
    for step in range(4):
        rb.n_step = 1 if step == 2 else rb.n_step
        obs = np.array([[step, 0]], dtype=np.float32)
        rb.add(obs, obs + 100, np.array([0]), np.array([1.0]), np.array([False]), np.array([False]))
    batch = rb.sample(256, np.random.default_rng(0), torch.device("cpu"))
    rows = zip(batch["obs"][:, 0].tolist(), batch["rewards"].tolist(), batch["discounts"].tolist(), strict=True)
    assert set(rows) == {(0, 1.75, 0.125), (1, 1.5, 0.25), (2, 1.0, 0.5), (3, 1.0, 0.5)}


def test_replay_buffer_sampling_is_seeded(script):
    rb = one_step_buffer(script, capacity=50)
    fill(rb, steps=50, num_envs=1)
    a, b = (rb.sample(64, np.random.default_rng(3), torch.device("cpu"))["obs"] for _ in range(2))
    assert torch.equal(a, b)


def test_replay_buffer_batches_reach_the_learners_device(script):
    """A buffer too big for the GPU stays on the host (main loop); its batches must still reach the learner."""
    rb = one_step_buffer(script, capacity=50)
    fill(rb, steps=10, num_envs=1)
    batch = rb.sample(8, np.random.default_rng(0), torch.device("meta"))  # any device but the buffer's
    assert {value.device.type for value in batch.values()} == {"meta"}


def test_replay_buffer_stores_into_the_memory_it_samples_when_that_is_replaced(script):
    """A researcher's new memory for the replay (pinned, cleared, moved): rows go there, not to the old one."""
    rb = one_step_buffer(script, capacity=5)
    rb.data = torch.full_like(rb.data, -7.0)
    fill(rb, steps=5, num_envs=1)
    assert sorted(row[0] for row in stored_rows(rb)) == [0, 10, 20, 30, 40]


def test_replay_buffer_state_round_trip(script):
    rb = one_step_buffer(script, capacity=9)
    fill(rb, steps=5, num_envs=1)
    copy = one_step_buffer(script, capacity=9)
    copy.load_state_dict(rb.state_dict())
    assert stored_rows(copy) == stored_rows(rb) and len(stored_rows(rb)) == 5
    for buffer in (rb, copy):  # adding after a restore goes on at the saved position: the same rows overwritten
        fill(buffer, steps=6, num_envs=1, first_step=5)
    assert stored_rows(copy) == stored_rows(rb) and len(stored_rows(rb)) == 9


@pytest.mark.parametrize("dueling", [False, True])
def test_q_network_widths_follow_hidden_sizes(script, dueling):
    """Parameters of layers 4 -> 5 -> 7 -> 3, and with a dueling head a value layer 7 -> 1: the flags reach the
    network, whatever its layout."""
    q = script.QNetwork(4, 3, script.Args(hidden_sizes=(5, 7), dueling=dueling))
    assert sum(p.numel() for p in q.parameters()) == (4 * 5 + 5) + (5 * 7 + 7) + (7 * 3 + 3) + (7 + 1) * dueling
    assert q(torch.zeros(1, 4)).shape == (1, 3) and q(torch.zeros(32, 4)).shape == (32, 3)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_layer_norm_makes_the_network_blind_to_a_hidden_layers_scale(script, layer_norm):
    """--layer-norm normalises each hidden layer's output before its ReLU: the first layer's weights and bias scaled
    by 3 leave every Q-value as it was, and without it they do not. Its gain and bias add 2 parameters a hidden unit."""
    torch.manual_seed(0)
    q, obs = script.QNetwork(4, 3, script.Args(hidden_sizes=(5, 7), layer_norm=layer_norm)), torch.randn(16, 4)
    first = next(m for m in q.modules() if isinstance(m, nn.Linear))
    with torch.no_grad():
        before = q(obs)
        first.weight *= 3.0
        first.bias *= 3.0
        assert torch.allclose(q(obs), before, atol=1e-4) == layer_norm
    plain = script.QNetwork(4, 3, script.Args(hidden_sizes=(5, 7)))
    assert sum(p.numel() for p in q.parameters()) - sum(p.numel() for p in plain.parameters()) == 24 * layer_norm


def test_without_dueling_the_network_is_the_plain_mlp(script):
    """--no-dueling builds the MLP of before, layer by layer in the same order: the same weights from the same seed,
    so the same returns for a seed as the scripts before the dueling head."""
    torch.manual_seed(3)
    q = script.QNetwork(4, 3, script.Args(hidden_sizes=(5, 7), dueling=False))
    torch.manual_seed(3)
    plain = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    obs = torch.randn(16, 4)
    assert torch.equal(q(obs), plain(obs))


def test_dueling_q_is_value_plus_advantages_less_their_mean(script):
    """Q = V + A - mean_a A: a constant added to every advantage leaves Q as it was, one added to the value moves
    every Q by it, and 3 added to one advantage of three moves that action's Q by 2 and the others' by -1."""
    torch.manual_seed(0)
    q, obs = script.QNetwork(4, 3, script.Args(hidden_sizes=(8,), dueling=True)), torch.randn(16, 4)
    with torch.no_grad():
        before = q(obs)
        q.advantage.bias += 5.0
        assert torch.allclose(q(obs), before, atol=1e-5)
        q.value.bias += 2.0
        assert torch.allclose(q(obs), before + 2.0, atol=1e-5)
        q.advantage.bias[1] += 3.0
        assert torch.allclose(q(obs), before + 2.0 + torch.tensor([-1.0, 2.0, -1.0]), atol=1e-5)


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("edit", EDITS)
def test_greedy_actions_follow_the_network_as_it_is_now(script, edit, dueling):
    """After a researcher's edit of the network, greedy actions are the argmax of what it computes now: after
    optimizer steps and after a layer's weights are replaced (a cached copy of the weights would act as before)."""
    torch.manual_seed(0)
    q = EDITS[edit](script.QNetwork(4, 3, script.Args(hidden_sizes=(16,), dueling=dueling)))
    obs = np.random.default_rng(1).standard_normal((256, 4)).astype(np.float32)

    def expected():
        with torch.no_grad():
            return q(torch.from_numpy(obs)).argmax(dim=1).numpy()

    before = script.greedy_actions(q, obs, torch.device("cpu"))
    assert np.array_equal(before, expected())
    optimizer = torch.optim.Adam(q.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        q(torch.from_numpy(obs))[:, 0].sum().neg().backward()  # push Q(., 0) down everywhere
        optimizer.step()
    after = script.greedy_actions(q, obs, torch.device("cpu"))
    assert not np.array_equal(after, before) and np.array_equal(after, expected())
    name, last = [(n, m) for n, m in q.named_modules() if isinstance(m, nn.Linear)][-1]
    parent, _, attribute = name.rpartition(".")
    setattr(q.get_submodule(parent), attribute, nn.Linear(last.in_features, last.out_features))  # replaced mid-run
    assert np.array_equal(script.greedy_actions(q, obs, torch.device("cpu")), expected())


def test_the_defaults_pass_the_checks(script, monkeypatch):
    monkeypatch.setattr("sys.argv", ["script"])
    assert script.parse_args() == (script.Args(), None)


def test_evaluate_ends_an_episode_at_a_truncation_as_at_a_termination(script, tmp_path):
    """ToyChain's even episodes terminate after 4 steps, its odd ones run into the time limit after 6."""
    args = script.Args(env_id="toy_envs:ToyChain-v0", hidden_sizes=(4,), eval_episodes=4)
    torch.save(script.QNetwork(2, 2, args).state_dict(), tmp_path / "q.pt")
    assert script.evaluate(str(tmp_path / "q.pt"), args, torch.device("cpu")) == [4.0, 6.0, 4.0, 6.0]


@pytest.mark.parametrize("eval_epsilon", [0.0, 1.0])
def test_evaluate_is_seeded_and_follows_eval_epsilon(script, tmp_path, eval_epsilon):
    """A network that always pushes right, played on CartPole from reset(seed + 1): at eval epsilon 0 the returns
    are those of pushing right by hand; at 1 every action is random, so they differ."""
    args = script.Args(hidden_sizes=(4,), eval_episodes=5, eval_epsilon=eval_epsilon, seed=3)
    q = script.QNetwork(4, 2, args)
    with torch.no_grad():
        for p in q.parameters():
            p.zero_()
        output = next(m for m in q.modules() if isinstance(m, nn.Linear) and m.out_features == 2)  # 4 -> 4 -> 2
        output.bias.copy_(torch.tensor([0.0, 1.0]))  # always push right
    torch.save(q.state_dict(), tmp_path / "right.pt")
    returns = script.evaluate(str(tmp_path / "right.pt"), args, torch.device("cpu"))
    env, pushing_right = gym.make("CartPole-v1"), []
    env.reset(seed=args.seed + 1)
    for _ in range(args.eval_episodes):
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(1)
            steps, done = steps + 1, terminated or truncated
        pushing_right.append(float(steps))
        env.reset()  # the vector env's autoreset: unseeded, the env's own generator goes on
    assert (returns == pushing_right) is (eval_epsilon == 0.0)
