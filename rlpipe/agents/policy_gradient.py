"""PPO-clip in plain numpy: a policy-gradient agent for Box observations and Discrete actions.

One file, readable top to bottom (in the spirit of CleanRL's single-file agents):

1. two small MLPs with tanh hidden layers, a policy (logits) and a value function, built with
   orthogonal initialisation from the agent's own ``rng``;
2. a rollout buffer of ``n_steps`` transitions, filled one environment step at a time through the
   base class helpers (``current_observation`` / ``step_env``);
3. when the buffer is full: values and old log-probabilities in one batched forward pass, GAE
   advantages, then ``n_epochs`` passes of shuffled minibatches on the clipped surrogate loss, with
   gradients written out by hand and an Adam step.

Every random draw (initial weights, actions, minibatch order) comes from ``self.rng``, and an update
only happens when the buffer holds ``n_steps`` transitions, so ``fit(a); fit(b)`` equals ``fit(a + b)``
bit for bit, and a checkpoint (``get_state``) carries the partial buffer to continue exactly.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlpipe.agents.base import AgentWithSimplePolicy

_NETS = ("pi", "vf")  # policy network (logits) and value network (one output)


class PolicyGradientAgent(AgentWithSimplePolicy):
    """Proximal Policy Optimisation (clipped surrogate, GAE, value baseline), numpy only.

    The defaults solve CartPole-v1 (greedy policy: mean return >= 475 of 500) with a budget of
    ``100_000`` environment steps, which takes about 10 s on one core here (``OMP_NUM_THREADS=1``).

    Parameters
    ----------
    env:
        Environment or env spec: a ``Box`` observation space and a ``Discrete`` action space.
    learning_rate:
        Adam step size, shared by both networks.
    n_steps:
        Transitions collected between two updates (the rollout buffer size).
    n_minibatches:
        Minibatches each epoch splits the rollout into.
    n_epochs:
        Passes over the rollout per update.
    gamma:
        Discount factor.
    gae_lambda:
        GAE trade-off between bias (0: one-step TD) and variance (1: Monte-Carlo returns).
    clip_range:
        PPO ratio clipping ``epsilon``: the policy may move by about this much per update.
    ent_coef:
        Weight of the entropy bonus (exploration).
    vf_coef:
        Weight of the value loss in the total loss (matters through gradient clipping).
    max_grad_norm:
        Clip the global gradient norm (both networks) to this value; ``None`` disables clipping.
    hidden_sizes:
        Widths of the tanh hidden layers of each network.
    normalize_advantages:
        Standardise advantages within each minibatch.
    **kwargs:
        Passed to :class:`~rlpipe.agents.base.Agent` (``seeder``, ``eval_env``, ``output_dir``…).
    """

    name = "PolicyGradient"

    def __init__(
        self,
        env: Any,
        learning_rate: float = 1e-3,
        n_steps: int = 256,
        n_minibatches: int = 4,
        n_epochs: int = 10,
        gamma: float = 0.98,
        gae_lambda: float = 0.8,
        clip_range: float = 0.2,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float | None = 0.5,
        hidden_sizes: Sequence[int] = (64, 64),
        normalize_advantages: bool = True,
        **kwargs: Any,
    ) -> None:
        _check_hyperparameters(
            learning_rate=learning_rate, n_steps=n_steps, n_minibatches=n_minibatches, n_epochs=n_epochs,
            gamma=gamma, gae_lambda=gae_lambda, clip_range=clip_range, ent_coef=ent_coef, vf_coef=vf_coef,
            max_grad_norm=max_grad_norm, hidden_sizes=hidden_sizes,
        )
        super().__init__(env, **kwargs)
        if not isinstance(self.env.observation_space, gym.spaces.Box) or len(self.env.observation_space.shape) != 1:
            raise ValueError(
                f"{type(self).__name__} needs a 1-D Box observation space, got {self.env.observation_space}"
            )
        if not isinstance(self.env.action_space, gym.spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs a Discrete action space, got {self.env.action_space}")

        self.learning_rate = float(learning_rate)
        self.n_steps = int(n_steps)
        self.n_minibatches = int(n_minibatches)
        self.n_epochs = int(n_epochs)
        self.gamma = float(gamma)
        self.gae_lambda = float(gae_lambda)
        self.clip_range = float(clip_range)
        self.ent_coef = float(ent_coef)
        self.vf_coef = float(vf_coef)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.normalize_advantages = bool(normalize_advantages)

        self.obs_dim = int(self.env.observation_space.shape[0])
        self.n_actions = int(self.env.action_space.n)
        self._action_start = int(self.env.action_space.start)  # Discrete(n, start=s): actions s..s+n-1

        # Networks: params[f"{net}.W{i}"] has shape (in, out) so that a batch is ``x @ W + b``.
        # Orthogonal init as in the PPO literature: gain sqrt(2) for tanh layers, a near-zero policy
        # head (0.01) so that the first policy is close to uniform, gain 1 for the value head.
        self.params: dict[str, np.ndarray] = {}
        for net, out_dim, head_gain in (("pi", self.n_actions, 0.01), ("vf", 1, 1.0)):
            sizes = (self.obs_dim, *self.hidden_sizes, out_dim)
            for i in range(len(sizes) - 1):
                gain = head_gain if i == len(sizes) - 2 else np.sqrt(2.0)
                self.params[f"{net}.W{i}"] = _orthogonal(self.rng, sizes[i], sizes[i + 1], gain)
                self.params[f"{net}.b{i}"] = np.zeros(sizes[i + 1])
        self._n_layers = len(self.hidden_sizes) + 1

        # Adam moments, one pair per parameter, and the number of Adam steps taken.
        self.adam_m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.adam_v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.adam_t = 0
        self.n_updates = 0

        # Rollout buffer. ``next_obs`` is the observation after each step, so that the value used to
        # bootstrap is always at hand: at a time-limit truncation the episode did not really end, and
        # its return continues beyond the final observation.
        self.buffer_pos = 0
        self.buf_obs = np.zeros((self.n_steps, self.obs_dim))
        self.buf_next_obs = np.zeros((self.n_steps, self.obs_dim))
        self.buf_actions = np.zeros(self.n_steps, dtype=np.int64)
        self.buf_rewards = np.zeros(self.n_steps)
        self.buf_terminated = np.zeros(self.n_steps, dtype=bool)
        self.buf_done = np.zeros(self.n_steps, dtype=bool)  # terminated or truncated: the episode stops here

    # ------------------------------------------------------------------ training
    def fit(self, budget: int, **kwargs: Any) -> None:
        """Collect ``budget`` more environment steps, updating each time the buffer is full."""
        if int(budget) != budget or budget < 0:
            raise ValueError(f"budget must be a non-negative integer, got {budget!r}")
        for _ in range(int(budget)):
            obs = self.current_observation()
            action = self._sample_action(obs)
            next_obs, reward, terminated, truncated, _ = self.step_env(action + self._action_start)
            i = self.buffer_pos
            self.buf_obs[i] = obs
            self.buf_next_obs[i] = next_obs
            self.buf_actions[i] = action
            self.buf_rewards[i] = reward
            self.buf_terminated[i] = terminated
            self.buf_done[i] = terminated or truncated
            self.buffer_pos = i + 1
            if self.buffer_pos == self.n_steps:
                self._update()
                self.buffer_pos = 0

    def _sample_action(self, obs: np.ndarray) -> int:
        """Sample from the softmax policy by inverting its CDF with one uniform draw (cheap per step)."""
        logits = self._policy_logits(obs)
        weights = np.exp(logits - logits.max())
        cdf = np.cumsum(weights)
        action = int(np.count_nonzero(cdf < self.rng.random() * cdf[-1]))
        return min(action, self.n_actions - 1)

    def _policy_logits(self, obs: np.ndarray) -> np.ndarray:
        """Policy forward pass for a single observation."""
        h = np.asarray(obs, dtype=np.float64)
        p = self.params
        last = self._n_layers - 1
        for i in range(last):
            h = np.tanh(h @ p[f"pi.W{i}"] + p[f"pi.b{i}"])
        return h @ p[f"pi.W{last}"] + p[f"pi.b{last}"]

    def _forward(self, net: str, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Batched forward pass; returns the output and the layer inputs kept for the backward pass."""
        p = self.params
        inputs = []
        h = x
        for i in range(self._n_layers - 1):
            inputs.append(h)
            h = np.tanh(h @ p[f"{net}.W{i}"] + p[f"{net}.b{i}"])
        inputs.append(h)
        last = self._n_layers - 1
        return h @ p[f"{net}.W{last}"] + p[f"{net}.b{last}"], inputs

    def _backward(self, net: str, inputs: list[np.ndarray], d_out: np.ndarray, grads: dict[str, np.ndarray]) -> None:
        """Backpropagate ``d_out`` (dLoss/dOutput) through ``net``, writing dLoss/dParam into ``grads``."""
        p = self.params
        d = d_out
        for i in range(self._n_layers - 1, -1, -1):
            grads[f"{net}.W{i}"] = inputs[i].T @ d
            grads[f"{net}.b{i}"] = d.sum(axis=0)
            if i > 0:
                # inputs[i] = tanh(z) of the layer below, and tanh' = 1 - tanh^2.
                d = (d @ p[f"{net}.W{i}"].T) * (1.0 - inputs[i] * inputs[i])

    def _advantages(self, values: np.ndarray, next_values: np.ndarray) -> np.ndarray:
        """GAE: ``A_t = delta_t + gamma * lambda * A_{t+1}``, restarted where an episode stops.

        ``delta_t`` bootstraps from the next observation unless the episode *terminated*: after a
        truncation (time limit) the value of the final observation still counts. The last transition
        of the buffer bootstraps from its next observation too, as the episode goes on in the next rollout.
        """
        not_terminated = 1.0 - self.buf_terminated
        deltas = self.buf_rewards + self.gamma * next_values * not_terminated - values
        carry = self.gamma * self.gae_lambda * (1.0 - self.buf_done)
        advantages = np.zeros(self.n_steps)
        running = 0.0
        for t in range(self.n_steps - 1, -1, -1):
            running = deltas[t] + carry[t] * running
            advantages[t] = running
        return advantages

    def _update(self) -> None:
        """One PPO update on the full buffer: ``n_epochs`` x ``n_minibatches`` Adam steps."""
        values = self._forward("vf", self.buf_obs)[0][:, 0]
        next_values = self._forward("vf", self.buf_next_obs)[0][:, 0]
        old_log_probs = _log_softmax(self._forward("pi", self.buf_obs)[0])
        old_log_probs = old_log_probs[np.arange(self.n_steps), self.buf_actions]
        advantages = self._advantages(values, next_values)
        returns = advantages + values  # targets of the value function (TD(lambda) returns)

        stats = np.zeros(5)  # policy_loss, value_loss, entropy, approx_kl, clip_fraction
        grads: dict[str, np.ndarray] = {}
        for _ in range(self.n_epochs):
            order = self.rng.permutation(self.n_steps)
            for batch in np.array_split(order, self.n_minibatches):
                stats += self._minibatch_gradients(
                    self.buf_obs[batch], self.buf_actions[batch], old_log_probs[batch],
                    advantages[batch], returns[batch], grads,
                )
                self._adam_step(grads)
        stats /= self.n_epochs * self.n_minibatches
        self.n_updates += 1
        step = self.total_env_steps
        for tag, value in zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"), stats):
            self.writer.add_scalar(tag, float(value), step)
        explained = 1.0 - np.var(returns - values) / max(np.var(returns), 1e-12)
        self.writer.add_scalar("explained_variance", float(explained), step)

    def _minibatch_gradients(
        self, obs: np.ndarray, actions: np.ndarray, old_log_probs: np.ndarray,
        advantages: np.ndarray, returns: np.ndarray, grads: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Gradients of ``policy_loss - ent_coef * entropy + vf_coef * value_loss`` into ``grads``.

        Returns the minibatch statistics (policy loss, value loss, entropy, approx. KL, clip fraction).
        """
        n = len(actions)
        rows = np.arange(n)
        if self.normalize_advantages and n > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        # Policy: clipped surrogate L = -mean(min(r A, clip(r, 1-eps, 1+eps) A)), r = pi/pi_old.
        logits, pi_inputs = self._forward("pi", obs)
        log_probs = _log_softmax(logits)
        probs = np.exp(log_probs)
        log_ratio = log_probs[rows, actions] - old_log_probs
        ratio = np.exp(log_ratio)
        unclipped = ratio * advantages
        clipped = np.clip(ratio, 1.0 - self.clip_range, 1.0 + self.clip_range) * advantages
        policy_loss = -np.minimum(unclipped, clipped).mean()
        # The min takes the unclipped term where it is the smaller one; only there does the gradient
        # flow (d/dr = A); elsewhere the clipped term is constant in r. Chain rule: dr/dlogp = r.
        d_log_prob = -np.where(unclipped <= clipped, advantages, 0.0) * ratio / n
        # d log p(a) / d logits = onehot(a) - p
        d_logits = -probs * d_log_prob[:, None]
        d_logits[rows, actions] += d_log_prob
        # Entropy H = -sum p log p, dH/dlogits_j = -p_j (log p_j + H); the loss has -ent_coef * mean(H).
        entropy = -(probs * log_probs).sum(axis=1)
        if self.ent_coef:
            d_logits += (self.ent_coef / n) * probs * (log_probs + entropy[:, None])
        self._backward("pi", pi_inputs, d_logits, grads)

        # Value: 0.5 * mean((V - R)^2), weighted by vf_coef.
        values, vf_inputs = self._forward("vf", obs)
        errors = values[:, 0] - returns
        value_loss = 0.5 * np.mean(errors * errors)
        self._backward("vf", vf_inputs, (self.vf_coef / n) * errors[:, None], grads)

        approx_kl = np.mean((ratio - 1.0) - log_ratio)  # low-variance KL(old || new) estimator
        clip_fraction = np.mean(np.abs(ratio - 1.0) > self.clip_range)
        return np.array([policy_loss, value_loss, entropy.mean(), approx_kl, clip_fraction])

    def _adam_step(self, grads: dict[str, np.ndarray]) -> None:
        """Adam (Kingma & Ba) with bias correction, after clipping the global gradient norm."""
        if self.max_grad_norm is not None:
            norm = np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
            if norm > self.max_grad_norm:
                scale = self.max_grad_norm / (norm + 1e-6)
                for g in grads.values():
                    g *= scale
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.adam_t += 1
        step_size = self.learning_rate * np.sqrt(1.0 - beta2**self.adam_t) / (1.0 - beta1**self.adam_t)
        for key, g in grads.items():
            m, v = self.adam_m[key], self.adam_v[key]
            m *= beta1
            m += (1.0 - beta1) * g
            v *= beta2
            v += (1.0 - beta2) * (g * g)
            self.params[key] -= step_size * m / (np.sqrt(v) + eps)

    # ------------------------------------------------------------------ evaluation
    def policy(self, observation: Any) -> Any:
        """Greedy action (most probable under the policy); draws no random number."""
        return int(np.argmax(self._policy_logits(observation))) + self._action_start

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """Weights, Adam moments, the partial rollout buffer and the counters (arrays are copies)."""
        state: dict[str, Any] = {}
        for key in self.params:
            state[f"param.{key}"] = self.params[key].copy()
            state[f"adam_m.{key}"] = self.adam_m[key].copy()
            state[f"adam_v.{key}"] = self.adam_v[key].copy()
        for key in ("obs", "next_obs", "actions", "rewards", "terminated", "done"):
            state[f"buf_{key}"] = getattr(self, f"buf_{key}").copy()
        state["adam_t"] = int(self.adam_t)
        state["n_updates"] = int(self.n_updates)
        state["buffer_pos"] = int(self.buffer_pos)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output into an agent built with the same hyperparameters."""
        for key in self.params:
            for prefix, target in (("param", self.params), ("adam_m", self.adam_m), ("adam_v", self.adam_v)):
                target[key] = _same_shape(state[f"{prefix}.{key}"], target[key], f"{prefix}.{key}")
        for key in ("obs", "next_obs", "actions", "rewards", "terminated", "done"):
            name = f"buf_{key}"
            setattr(self, name, _same_shape(state[name], getattr(self, name), name))
        self.adam_t = int(state["adam_t"])
        self.n_updates = int(state["n_updates"])
        self.buffer_pos = int(state["buffer_pos"])

    # ------------------------------------------------------------------ hyperparameter search
    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        """An optuna search space over the main hyperparameters (init kwargs)."""
        hidden = trial.suggest_categorical("hidden_size", [32, 64, 128])
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
            "n_steps": trial.suggest_categorical("n_steps", [128, 256, 512, 1024, 2048]),
            "n_minibatches": trial.suggest_categorical("n_minibatches", [1, 2, 4, 8]),
            "n_epochs": trial.suggest_int("n_epochs", 3, 20),
            "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99, 0.995]),
            "gae_lambda": trial.suggest_float("gae_lambda", 0.8, 1.0),
            "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3]),
            "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.05, log=True),
            "hidden_sizes": (hidden, hidden),
        }


# ---------------------------------------------------------------------- helpers
def _check_hyperparameters(**hp: Any) -> None:
    """Raise ValueError naming the first invalid hyperparameter."""
    def positive_int(name: str) -> None:
        value = hp[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def number(name: str, low: float, high: float, low_open: bool, high_open: bool = False) -> None:
        value = hp[name]
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and np.isfinite(value)
        ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise ValueError(f"{name} must be a number in {interval}, got {value!r}")

    number("learning_rate", 0.0, np.inf, low_open=True, high_open=True)
    positive_int("n_steps")
    positive_int("n_minibatches")
    if hp["n_minibatches"] > hp["n_steps"]:
        raise ValueError(f"n_minibatches ({hp['n_minibatches']}) must not exceed n_steps ({hp['n_steps']})")
    positive_int("n_epochs")
    number("gamma", 0.0, 1.0, low_open=False)
    number("gae_lambda", 0.0, 1.0, low_open=False)
    number("clip_range", 0.0, np.inf, low_open=True, high_open=True)
    number("ent_coef", 0.0, np.inf, low_open=False, high_open=True)
    number("vf_coef", 0.0, np.inf, low_open=False, high_open=True)
    if hp["max_grad_norm"] is not None:
        number("max_grad_norm", 0.0, np.inf, low_open=True, high_open=True)
    sizes = hp["hidden_sizes"]
    if (isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes
            or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in sizes)):
        raise ValueError(f"hidden_sizes must be a non-empty sequence of positive integers, got {sizes!r}")


def _orthogonal(rng: np.random.Generator, n_in: int, n_out: int, gain: float) -> np.ndarray:
    """A (n_in, n_out) matrix with orthonormal rows or columns, times ``gain`` (Saxe et al. 2014)."""
    a = rng.standard_normal((max(n_in, n_out), min(n_in, n_out)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique, so q is uniformly distributed
    return np.ascontiguousarray(gain * (q if n_in >= n_out else q.T))


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _same_shape(value: Any, like: np.ndarray, name: str) -> np.ndarray:
    array = np.array(value, dtype=like.dtype)
    if array.shape != like.shape:
        raise ValueError(f"state entry {name} has shape {array.shape}, expected {like.shape} (other hyperparameters?)")
    return array
