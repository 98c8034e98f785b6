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
# Arrays that make up the learned state (with the counters adam_t, n_updates and buffer_pos).
_STATE_ARRAYS = (
    "theta", "adam_m", "adam_v",
    "buf_obs", "buf_next_obs", "buf_actions", "buf_rewards", "buf_terminated", "buf_done",
)


class PolicyGradientAgent(AgentWithSimplePolicy):
    """Proximal Policy Optimisation (clipped surrogate, GAE, value baseline), numpy only.

    The defaults solve CartPole-v1 (greedy policy: mean return >= 475 of 500) with a budget of
    ``100_000`` environment steps, which takes about 6 s on one core here (``OMP_NUM_THREADS=1``;
    about 60 us per step, half of it in the updates). Most seeds already reach 500 after 20k-50k steps;
    100k leaves a margin. Like any PPO at a constant learning rate, the policy can still dip briefly
    after it has solved the task (about 1 evaluation in 150 over 48 seeds, 20k-150k steps).
    The defaults are close to rl-baselines3-zoo's CartPole settings, for a single environment.

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
    fit_is_additive = True

    def __init__(
        self,
        env: Any,
        learning_rate: float = 1e-3,
        n_steps: int = 512,
        n_minibatches: int = 8,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        ent_coef: float = 0.01,
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

        # Networks. All weights live in one flat vector ``theta`` (and the gradient in ``grad``): the
        # layers are views into it, so Adam and gradient clipping are a handful of vector operations
        # instead of a loop over layers. ``layers[net]`` lists (W, b) with W of shape (in, out), so
        # that a batch goes through a layer as ``x @ W + b``.
        shapes: list[tuple[str, tuple[int, ...]]] = []
        for net, out_dim in (("pi", self.n_actions), ("vf", 1)):
            sizes = (self.obs_dim, *self.hidden_sizes, out_dim)
            for i in range(len(sizes) - 1):
                shapes += [(f"{net}.W{i}", (sizes[i], sizes[i + 1])), (f"{net}.b{i}", (sizes[i + 1],))]
        n_params = sum(int(np.prod(shape)) for _, shape in shapes)
        self.theta = np.zeros(n_params)
        self.grad = np.zeros(n_params)
        self.params = _views(self.theta, shapes)
        self._grads = _views(self.grad, shapes)
        self.layers = {net: _layer_list(self.params, net) for net in _NETS}
        self._grad_layers = {net: _layer_list(self._grads, net) for net in _NETS}

        # Orthogonal init as in the PPO literature: gain sqrt(2) for tanh layers, a near-zero policy
        # head (0.01) so that the first policy is close to uniform, gain 1 for the value head; zero biases.
        for net, head_gain in (("pi", 0.01), ("vf", 1.0)):
            for i, (w, _) in enumerate(self.layers[net]):
                gain = head_gain if i == len(self.layers[net]) - 1 else np.sqrt(2.0)
                w[...] = _orthogonal(self.rng, *w.shape, gain)

        # Adam moments (same layout as theta) and the number of Adam steps taken.
        self.adam_m = np.zeros(n_params)
        self.adam_v = np.zeros(n_params)
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
        *hidden, (w_out, b_out) = self.layers["pi"]
        h = obs
        for w, b in hidden:
            h = np.tanh(h @ w + b)
        return h @ w_out + b_out

    def _forward(self, net: str, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Batched forward pass; returns the output and each layer's input, kept for the backward pass."""
        *hidden, (w_out, b_out) = self.layers[net]
        inputs = []
        h = x
        for w, b in hidden:
            inputs.append(h)
            h = np.tanh(h @ w + b)
        inputs.append(h)
        return h @ w_out + b_out, inputs

    def _backward(self, net: str, inputs: list[np.ndarray], d_out: np.ndarray) -> None:
        """Backpropagate ``d_out`` (dLoss/dOutput) through ``net``, writing dLoss/dParams into ``self.grad``."""
        layers, grad_layers = self.layers[net], self._grad_layers[net]
        d = d_out
        for i in range(len(layers) - 1, -1, -1):
            d_w, d_b = grad_layers[i]
            np.matmul(inputs[i].T, d, out=d_w)
            d.sum(axis=0, out=d_b)
            if i > 0:
                # inputs[i] = tanh(z) of the layer below, and tanh' = 1 - tanh^2.
                d = (d @ layers[i][0].T) * (1.0 - inputs[i] * inputs[i])

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
        for _ in range(self.n_epochs):
            order = self.rng.permutation(self.n_steps)
            for batch in np.array_split(order, self.n_minibatches):
                stats += self._minibatch_gradients(
                    self.buf_obs[batch], self.buf_actions[batch], old_log_probs[batch],
                    advantages[batch], returns[batch],
                )
                self._adam_step()
        stats /= self.n_epochs * self.n_minibatches
        self.n_updates += 1
        step = self.total_env_steps
        for tag, value in zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"), stats):
            self.writer.add_scalar(tag, float(value), step)
        explained = 1.0 - np.var(returns - values) / max(np.var(returns), 1e-12)
        self.writer.add_scalar("explained_variance", float(explained), step)

    def _minibatch_gradients(
        self, obs: np.ndarray, actions: np.ndarray, old_log_probs: np.ndarray,
        advantages: np.ndarray, returns: np.ndarray,
    ) -> np.ndarray:
        """Gradient of ``policy_loss - ent_coef * entropy + vf_coef * value_loss`` into ``self.grad``.

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
        self._backward("pi", pi_inputs, d_logits)

        # Value: 0.5 * mean((V - R)^2), weighted by vf_coef.
        values, vf_inputs = self._forward("vf", obs)
        errors = values[:, 0] - returns
        value_loss = 0.5 * np.mean(errors * errors)
        self._backward("vf", vf_inputs, (self.vf_coef / n) * errors[:, None])

        approx_kl = np.mean((ratio - 1.0) - log_ratio)  # low-variance KL(old || new) estimator
        clip_fraction = np.mean(np.abs(ratio - 1.0) > self.clip_range)
        return np.array([policy_loss, value_loss, entropy.mean(), approx_kl, clip_fraction])

    def _adam_step(self) -> None:
        """Adam (Kingma & Ba) with bias correction on ``theta``, after clipping the gradient's global norm."""
        g = self.grad
        if self.max_grad_norm is not None:
            norm = np.sqrt(g @ g)
            if norm > self.max_grad_norm:
                g *= self.max_grad_norm / (norm + 1e-6)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.adam_t += 1
        step_size = self.learning_rate * np.sqrt(1.0 - beta2**self.adam_t) / (1.0 - beta1**self.adam_t)
        self.adam_m *= beta1
        self.adam_m += (1.0 - beta1) * g
        self.adam_v *= beta2
        self.adam_v += (1.0 - beta2) * (g * g)
        self.theta -= step_size * self.adam_m / (np.sqrt(self.adam_v) + eps)

    # ------------------------------------------------------------------ evaluation
    def policy(self, observation: Any) -> Any:
        """Greedy action (most probable under the policy); draws no random number."""
        return int(np.argmax(self._policy_logits(observation))) + self._action_start

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """Weights, Adam moments, the partial rollout buffer and the counters (arrays are copies)."""
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in _STATE_ARRAYS}
        state.update(adam_t=int(self.adam_t), n_updates=int(self.n_updates), buffer_pos=int(self.buffer_pos))
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output into an agent built with the same hyperparameters."""
        for name in _STATE_ARRAYS:
            target = getattr(self, name)
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(
                    f"state entry {name} has shape {value.shape}, expected {target.shape}: "
                    "was the checkpoint made with other hyperparameters or another environment?"
                )
            target[...] = value  # in place: the layer views into theta stay valid
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
    def is_number(value: Any) -> bool:
        return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
                and bool(np.isfinite(value)))

    for name in ("n_steps", "n_minibatches", "n_epochs"):
        value = hp[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if hp["n_minibatches"] > hp["n_steps"]:
        raise ValueError(f"n_minibatches ({hp['n_minibatches']}) must not exceed n_steps ({hp['n_steps']})")
    for name in ("learning_rate", "clip_range"):
        if not (is_number(hp[name]) and hp[name] > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {hp[name]!r}")
    if hp["max_grad_norm"] is not None and not (is_number(hp["max_grad_norm"]) and hp["max_grad_norm"] > 0):
        raise ValueError(f"max_grad_norm must be a finite number > 0 or None, got {hp['max_grad_norm']!r}")
    for name in ("ent_coef", "vf_coef"):
        if not (is_number(hp[name]) and hp[name] >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {hp[name]!r}")
    for name in ("gamma", "gae_lambda"):
        if not (is_number(hp[name]) and 0 <= hp[name] <= 1):
            raise ValueError(f"{name} must be a number in [0, 1], got {hp[name]!r}")
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


def _views(flat: np.ndarray, shapes: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """Name each consecutive slice of ``flat`` with its shape (views: writing them writes ``flat``)."""
    views, start = {}, 0
    for name, shape in shapes:
        size = int(np.prod(shape))
        views[name] = flat[start:start + size].reshape(shape)
        start += size
    return views


def _layer_list(views: dict[str, np.ndarray], net: str) -> list[tuple[np.ndarray, np.ndarray]]:
    n_layers = sum(1 for name in views if name.startswith(f"{net}.W"))
    return [(views[f"{net}.W{i}"], views[f"{net}.b{i}"]) for i in range(n_layers)]
