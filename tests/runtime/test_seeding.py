"""rlpipe.runtime.seeding: keyed (stateless) seeds, the Seeder wrapper, and seed records."""
from __future__ import annotations

import hashlib
import random
import sys

import numpy as np
import pytest

from rlpipe.runtime.seeding import (
    KEYED_NAMESPACE,
    Seeder,
    Stream,
    as_seed_sequence,
    experiment_stream,
    global_rng_state,
    keyed_child,
    name_key,
    seed_from_record,
    seed_record,
    seed_torch,
    torch_seed,
    unseeded_draws,
)

from rlberry_style_agents import fake_torch_module


def draws(seq: np.random.SeedSequence, n: int = 5) -> list[int]:
    return np.random.default_rng(seq).integers(0, 2**62, size=n).tolist()


# ---------------------------------------------------------------------------------------------- name_key
def test_name_key_is_the_first_8_bytes_of_sha256_little_endian():
    assert name_key("cartpole_ppo") == 126411284094287698  # hard-coded: must never change across versions
    expected = int.from_bytes(hashlib.sha256(b"cartpole_ppo").digest()[:8], "little")
    assert name_key("cartpole_ppo") == expected


def test_name_key_is_a_64_bit_int_and_distinguishes_names():
    keys = {name_key(n) for n in ["a", "b", "ql", "vi", "QL", "ql "]}
    assert len(keys) == 6
    assert all(0 <= k < 2**64 for k in keys)
    assert name_key("é") == int.from_bytes(hashlib.sha256("é".encode()).digest()[:8], "little")


# ---------------------------------------------------------------------------------------------- keyed children
def test_keyed_child_is_deterministic():
    root = np.random.SeedSequence(42)
    assert draws(keyed_child(root, 3, 1)) == draws(keyed_child(np.random.SeedSequence(42), 3, 1))
    assert keyed_child(root, 3, 1).spawn_key == (KEYED_NAMESPACE, 3, 1)


def test_keyed_child_ignores_children_spawned_before():
    fresh = np.random.SeedSequence(42)
    busy = np.random.SeedSequence(42)
    busy.spawn(17)  # stateful spawning changes busy.n_children_spawned
    assert busy.n_children_spawned == 17
    assert draws(keyed_child(busy, 5)) == draws(keyed_child(fresh, 5))


def test_keyed_child_extends_the_spawn_key_of_a_non_root_sequence():
    parent = keyed_child(np.random.SeedSequence(1), 7)
    child = keyed_child(parent, 2, 3)
    assert child.spawn_key == (KEYED_NAMESPACE, 7, KEYED_NAMESPACE, 2, 3)
    assert child.entropy == 1
    assert draws(child) == draws(keyed_child(keyed_child(np.random.SeedSequence(1), 7), 2, 3))


def test_keyed_children_differ_by_key():
    root = np.random.SeedSequence(42)
    seen = {tuple(draws(keyed_child(root, *key))) for key in [(0,), (1,), (0, 0), (0, 1), (1, 0)]}
    assert len(seen) == 5


def test_experiment_stream_is_deterministic_and_independent_of_spawning():
    a = experiment_stream(np.random.SeedSequence(42), "ql", Stream.FIT, 2)
    root = np.random.SeedSequence(42)
    root.spawn(5)
    b = experiment_stream(root, "ql", Stream.FIT, 2)
    assert draws(a) == draws(b)
    assert a.spawn_key == (KEYED_NAMESPACE, name_key("ql"), 0, 2)


def test_experiment_stream_differs_across_experiments_instances_streams_and_roots():
    root = np.random.SeedSequence(42)
    variants = [
        experiment_stream(root, "ql", Stream.FIT, 0),
        experiment_stream(root, "vi", Stream.FIT, 0),
        experiment_stream(root, "ql", Stream.FIT, 1),
        experiment_stream(root, "ql", Stream.EVAL, 0),
        experiment_stream(root, "ql", Stream.OPTIMIZE, 0),
        experiment_stream(root, "ql", Stream.STATISTICS, 0),
        experiment_stream(np.random.SeedSequence(43), "ql", Stream.FIT, 0),
    ]
    assert len({tuple(draws(v)) for v in variants}) == len(variants)


def test_stream_values_are_stable():
    assert [(s.name, int(s)) for s in Stream] == [("FIT", 0), ("EVAL", 1), ("OPTIMIZE", 2), ("STATISTICS", 3), ("MANAGER", 4)]


# ---------------------------------------------------------------------------------------------- Seeder
def test_seeder_from_int_matches_seed_sequence():
    assert draws(Seeder(5).seed_seq) == draws(np.random.SeedSequence(5))
    assert Seeder(5).rng.random() == np.random.default_rng(np.random.SeedSequence(5)).random()
    assert Seeder(np.int64(5)).seed_seq.entropy == 5


def test_seeder_from_seed_sequence_does_not_spawn():
    seq = np.random.SeedSequence(9)
    seeder = Seeder(seq)
    assert seeder.seed_seq is seq
    assert seq.n_children_spawned == 0


def test_seeder_from_seeder_shares_its_seed_sequence():
    original = Seeder(11)
    copy = Seeder(original)
    assert copy.seed_seq is original.seed_seq
    assert copy.rng.random() == Seeder(11).rng.random()


def test_seeder_none_gives_fresh_entropy():
    a, b = Seeder(None), Seeder()
    assert a.seed_seq.entropy != b.seed_seq.entropy
    assert isinstance(a.seed_seq, np.random.SeedSequence)


def test_seeder_rejects_negative_ints():
    with pytest.raises(ValueError, match="non-negative integer, got -1"):
        Seeder(-1)
    with pytest.raises(ValueError, match="non-negative"):
        as_seed_sequence(np.int32(-3))


@pytest.mark.parametrize("bad", ["42", 4.2, True, [1, 2], {"seed": 1}])
def test_seeder_rejects_non_seeds_with_type_error(bad):
    with pytest.raises(TypeError, match=f"cannot make a seed from {type(bad).__name__}"):
        Seeder(bad)


def test_spawn_is_stateful():
    seeder = Seeder(3)
    first, second = seeder.spawn(), seeder.spawn()
    assert isinstance(first, Seeder)
    assert draws(first.seed_seq) != draws(second.seed_seq)
    batch = Seeder(3).spawn(2)
    assert isinstance(batch, list) and len(batch) == 2
    assert draws(batch[0].seed_seq) == draws(first.seed_seq)  # same order as two single spawns
    assert draws(batch[1].seed_seq) == draws(second.seed_seq)
    assert isinstance(Seeder(3).spawn(1, squeeze=False), list)


def test_child_is_stateless():
    seeder = Seeder(3)
    a = seeder.child(4, 2)
    seeder.spawn(3)
    seeder.rng.random(100)
    b = seeder.child(4, 2)
    assert draws(a.seed_seq) == draws(b.seed_seq)
    assert draws(seeder.child(4, 3).seed_seq) != draws(a.seed_seq)


def test_keyed_children_do_not_collide_with_spawned_children():
    spawned = Seeder(0).spawn(2)
    keyed = [Seeder(0).child(0), Seeder(0).child(1)]
    for s, k in zip(spawned, keyed):
        assert draws(s.seed_seq) != draws(k.seed_seq)


def test_reseed_and_generate_state():
    seeder = Seeder(1)
    seeder.rng.random(10)
    seeder.reseed(2)
    assert seeder.rng.random() == Seeder(2).rng.random()
    np.testing.assert_array_equal(seeder.generate_state(3), np.random.SeedSequence(2).generate_state(3))


def test_repr_shows_entropy_and_key():
    assert repr(Seeder(5).child(1, 2)) == f"Seeder(entropy=5, spawn_key=({KEYED_NAMESPACE}, 1, 2))"


# ---------------------------------------------------------------------------------------------- records
def test_seed_record_is_json_and_round_trips():
    import json

    seq = experiment_stream(np.random.SeedSequence(2024), "my-exp", Stream.EVAL, 3)
    record = seed_record(seq)
    assert record == json.loads(json.dumps(record))
    assert record == {"entropy": 2024, "spawn_key": [KEYED_NAMESPACE, name_key("my-exp"), 1, 3]}
    rebuilt = seed_from_record(record)
    assert draws(rebuilt, 50) == draws(seq, 50)
    np.testing.assert_array_equal(rebuilt.generate_state(8), seq.generate_state(8))


def test_seed_record_of_fresh_entropy_round_trips():
    seq = np.random.SeedSequence()  # 128-bit entropy: must survive JSON as a Python int
    rebuilt = seed_from_record(seed_record(seq))
    assert rebuilt.entropy == seq.entropy
    assert draws(rebuilt) == draws(seq)


# ---------------------------------------------------------------------------------------------- torch and global generators
def test_torch_is_seeded_from_a_keyed_child_of_the_agents_seed_and_never_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    first = experiment_stream(np.random.SeedSequence(42), "e", Stream.FIT, 0)
    second = experiment_stream(np.random.SeedSequence(42), "e", Stream.FIT, 1)
    assert seed_torch(first) is False and "torch" not in sys.modules  # an optional extra: never imported by rlpipe
    torch = fake_torch_module()
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert seed_torch(first) is True and seed_torch(second) is True
    expected = [int(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, KEYED_NAMESPACE, name_key("torch")))
                    .generate_state(1, np.uint64)[0]) >> 1 for seq in (first, second)]
    assert torch.seeds == expected == [torch_seed(first), torch_seed(second)]
    assert expected[0] != expected[1] and all(0 <= seed < 2**63 for seed in expected)
    assert torch_seed(7) == torch_seed(np.random.SeedSequence(7))


def test_the_global_generators_drawn_from_are_named(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    before = global_rng_state()
    assert "torch" not in before and unseeded_draws(before, global_rng_state()) == []
    np.random.random()
    random.random()
    assert unseeded_draws(before, global_rng_state()) == ["numpy", "random"]
    torch = fake_torch_module()
    monkeypatch.setitem(sys.modules, "torch", torch)
    loaded = global_rng_state()
    assert unseeded_draws(before, loaded)[-1] == "torch"  # imported after `before` (the agent's build): not seeded
    torch.manual_seed(3)
    torch.rand(1)
    assert global_rng_state()["torch"] != loaded["torch"]
    assert unseeded_draws(loaded, global_rng_state()) == []  # loaded at the build, so seeded by rlpipe
