"""Sweep files: grid expansion, static/leaf split, scales, overrides and bad input."""

import dataclasses

import numpy as np
import pytest

from geomtoy import spec, sweep
from geomtoy.spec import SweepError

BASE = """
name = "t"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.05
importance = { decay = 0.9 }
[train]
seeds = 3
"""


def load(text, scale="default", sets=()):
    return sweep.loads(text, file="t.toml", scale=scale, sets=sets)


def test_defaults_are_the_paper_recipe():
    s = load(BASE)
    (g,) = s.groups
    assert g.shape == spec.Shape(
        kind="relu_output",
        n_features=5,
        n_hidden=2,
        batch_size=1024,
        steps=10_000,
        optimizer="adamw",
        schedule="constant",
        eval_samples=2**17,
        sampler="hash",
        structure="independent",
        set_size=1,
    )
    assert s.n_instances == 3 and s.n_points == 1 and s.root_seed == 0
    np.testing.assert_allclose(g.importance, np.tile(0.9 ** np.arange(5), (3, 1)))
    np.testing.assert_allclose(g.feature_probability, 0.05)
    np.testing.assert_allclose(g.lr, 1e-3)
    np.testing.assert_allclose(g.weight_decay, 0.01)
    np.testing.assert_array_equal(g.seed, [0, 1, 2])
    np.testing.assert_array_equal(g.instance, [0, 1, 2])


def test_grid_is_a_product_with_seeds_fastest():
    s = load(
        BASE
        + """
[grid]
"data.feature_probability" = { logspace = [1.0, 0.01, 3] }
"train.lr" = { linspace = [1e-3, 3e-3, 2] }
"""
    )
    assert s.n_instances == 3 * 2 * 3 and len(s.groups) == 1  # both axes are leaves
    cols = s.instance_columns()
    np.testing.assert_allclose(cols["data.feature_probability"], np.repeat([1.0, 0.1, 0.01], 6))
    np.testing.assert_allclose(cols["train.lr"], np.tile(np.repeat([1e-3, 3e-3], 3), 3))
    np.testing.assert_array_equal(cols["seed"], np.tile([0, 1, 2], 6))
    np.testing.assert_array_equal(cols["point"], np.repeat(np.arange(6), 3))
    g = s.groups[0]
    np.testing.assert_allclose(g.feature_probability[:, 0], cols["data.feature_probability"])
    np.testing.assert_allclose(g.lr, cols["train.lr"])


def test_static_axes_split_into_groups_that_keep_global_ids():
    s = load(
        BASE
        + """
[grid]
"model.kind" = ["linear", "relu_output"]
"model.n_features" = [5, 7]
"data.feature_probability" = [0.1, 0.2]
"""
    )
    assert len(s.groups) == 4
    assert [(g.shape.kind, g.shape.n_features) for g in s.groups] == [
        ("linear", 5),
        ("linear", 7),
        ("relu_output", 5),
        ("relu_output", 7),
    ]
    seen = np.concatenate([g.instance for g in s.groups])
    np.testing.assert_array_equal(np.sort(seen), np.arange(s.n_instances))
    for g in s.groups:
        assert g.feature_probability.shape == (len(g), g.shape.n_features)
        np.testing.assert_array_equal(s.group_of[g.instance], g.index)
        np.testing.assert_array_equal(s.row_of[g.instance], np.arange(len(g)))
    # group 1 = (linear, n=7): points 2, 3 -> instances 6..11; probabilities 0.1, 0.2
    np.testing.assert_array_equal(s.groups[1].instance, np.arange(6, 12))
    np.testing.assert_allclose(s.groups[1].feature_probability[:, 3], np.repeat([0.1, 0.2], 3))
    np.testing.assert_allclose(s.groups[1].importance[0], 0.9 ** np.arange(7))


def test_per_feature_lists_and_the_varied_feature():
    s = load(
        BASE.replace(
            "importance = { decay = 0.9 }", "importance = [5, 4, 3, 2, 1]\nvaried_importance = 7.0"
        )
        + """
[grid]
"data.varied_feature_probability" = [0.5, 0.01]
"""
    )
    g = s.groups[0]
    np.testing.assert_allclose(g.importance[0], [5, 4, 3, 2, 7])  # varied feature = last
    np.testing.assert_allclose(g.feature_probability[0], [0.05, 0.05, 0.05, 0.05, 0.5])
    np.testing.assert_allclose(g.feature_probability[3], [0.05, 0.05, 0.05, 0.05, 0.01])
    s0 = load(
        BASE.replace("[train]", "varied_feature = 0\nvaried_feature_probability = 0.2\n[train]")
    )
    np.testing.assert_allclose(s0.groups[0].feature_probability[0], [0.2, 0.05, 0.05, 0.05, 0.05])


def test_integer_axes_round_generated_values():
    s = load(BASE + '[grid]\n"train.steps" = { logspace = [10, 1000, 3] }\n')
    assert [g.shape.steps for g in s.groups] == [10, 100, 1000]
    with pytest.raises(SweepError, match="repeat after rounding"):
        load(BASE + '[grid]\n"train.steps" = { linspace = [1, 2, 5] }\n')


SCALED = (
    BASE
    + """
[grid]
"data.feature_probability" = { logspace = [1.0, 0.01, 9] }
[scale.default]
train.steps = 3000
[scale.smoke]
train.batch_size = 32
grid."train.lr" = [1e-3, 2e-3]
"""
)


def test_scales():
    paper = load(SCALED, scale="paper")
    assert paper.groups[0].shape.steps == 10_000 and paper.n_instances == 27
    default = load(SCALED)
    assert default.groups[0].shape.steps == 3000 and default.n_instances == 27
    smoke = load(SCALED, scale="smoke")
    shape = smoke.groups[0].shape
    assert (shape.steps, shape.batch_size, shape.eval_samples) == (100, 32, 8192)
    assert smoke.seeds == 2 and smoke.chunk_steps == 50
    np.testing.assert_allclose(smoke.axes[0].values, [1.0, 0.1, 0.01])  # thinned to 3
    assert [a.key for a in smoke.axes] == ["data.feature_probability", "train.lr"]
    assert smoke.n_instances == 3 * 2 * 2
    assert smoke.fingerprint() != default.fingerprint() != paper.fingerprint()


def test_smoke_fallback_without_a_smoke_table():
    s = load(BASE, scale="smoke")
    assert s.groups[0].shape.steps == 100 and s.seeds == 2


def test_set_overrides_pin_axes_and_add_axes():
    s = load(
        SCALED,
        sets=[
            "train.steps=50",
            "data.feature_probability=0.2",
            'grid.model.kind=["linear", "relu_output"]',
            "model.n_hidden=3",
        ],
    )
    assert [a.key for a in s.axes] == ["model.kind"]
    assert {g.shape.kind for g in s.groups} == {"linear", "relu_output"}
    assert all(g.shape.steps == 50 and g.shape.n_hidden == 3 for g in s.groups)
    np.testing.assert_allclose(s.groups[0].feature_probability, 0.2)
    assert load(BASE, sets=["model.kind=linear"]).groups[0].shape.kind == "linear"
    assert s.sets == (
        "train.steps=50",
        "data.feature_probability=0.2",
        'grid.model.kind=["linear", "relu_output"]',
        "model.n_hidden=3",
    )


def test_fingerprint_tracks_the_spec_not_the_description():
    a = load(BASE)
    assert (
        a.fingerprint()
        == load(BASE.replace('name = "t"', 'name = "t"\ndescription = "x"')).fingerprint()
    )
    assert a.fingerprint() != load(BASE, sets=["train.lr=2e-3"]).fingerprint()
    assert a.fingerprint() != load(BASE, sets=["root_seed=1"]).fingerprint()


def test_blocks_partition_each_group_into_equal_padded_sizes():
    s = load(
        BASE
        + '[grid]\n"model.kind" = ["linear", "relu_output"]\n"data.feature_probability" = { logspace = [1.0, 0.1, 11] }\n',
        sets=["train.block_size=10"],
    )
    blocks = s.blocks()
    for g in s.groups:
        mine = [b for b in blocks if b.group == g.index]
        rows = np.concatenate([b.rows for b in mine])
        np.testing.assert_array_equal(rows, np.arange(len(g)))  # 33 rows -> 4 blocks
        assert len(mine) == 4 and {b.size for b in mine} == {9}
        assert all(len(b.rows) <= b.size <= 10 for b in mine)
        assert all(len(b.padded_rows) == b.size for b in mine)
    assert [b.index for b in blocks] == list(range(8))
    assert {b.size for b in s.blocks(multiple=4)} == {12}


def test_auto_block_size_bounds_memory():
    small = sweep.auto_block_size(spec.Shape(n_features=2, n_hidden=1, steps=10))
    big = sweep.auto_block_size(spec.Shape(n_features=400, n_hidden=30, steps=10))
    assert big < small
    assert big * 4 * 8192 * (6 * 400 + 3 * 30) <= spec.AUTO_BLOCK_BYTES


def sweep_text(extra: dict) -> str:
    """BASE as sections of TOML literals, with `extra` {"section": {key: literal}} merged in."""
    doc = {
        "": {"name": '"t"'},
        "model": {"n_features": "5", "n_hidden": "2"},
        "data": {"feature_probability": "0.05", "importance": "{ decay = 0.9 }"},
        "train": {"seeds": "3"},
    }
    for section, items in extra.items():
        doc.setdefault(section, {}).update(items)
    lines = []
    for section, items in doc.items():
        if section:
            lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in items.items()]
    return "\n".join(lines) + "\n"


BAD = [
    ({"model": {"n_hiden": "2"}}, "model.n_hiden", "unknown key (did you mean 'n_hidden'?)"),
    ({"": {"colour": "1"}}, "colour", "unknown key"),
    ({"train": {"steps": '"many"'}}, "train.steps", "expected an integer"),
    ({"train": {"steps": "1.5"}}, "train.steps", "expected an integer"),
    ({"train": {"lr": "true"}}, "train.lr", "expected a number"),
    (
        {"data": {"feature_probability": "1.5"}},
        "data.feature_probability",
        "probability 1.5 outside (0, 1]",
    ),
    (
        {"data": {"feature_probability": "0"}},
        "data.feature_probability",
        "probability 0 outside (0, 1]",
    ),
    (
        {"data": {"feature_probability": "[0.1, 0.1, 2.0, 0.1, 0.1]"}},
        "data.feature_probability",
        "entry 2: probability 2 outside",
    ),
    (
        {"data": {"feature_probability": "[0.1, 0.1]"}},
        "data.feature_probability",
        "needs n_features = 5 entries, got 2",
    ),
    ({"data": {"importance": "{ decay = -1 }"}}, "data.importance", "decay: must be > 0"),
    ({"data": {"importance": "{ dekay = 0.9 }"}}, "data.importance", "{decay = d}"),
    ({"model": {"n_hidden": "0"}}, "model.n_hidden", "must be >= 1"),
    ({"model": {"kind": '"relu_outptu"'}}, "model.kind", "unknown value 'relu_outptu'"),
    ({"grid": {'"data.sparsity"': "[0.1]"}}, 'grid."data.sparsity"', "axis on an unknown key"),
    ({"grid": {'"train.seeds"': "[1, 2]"}}, 'grid."train.seeds"', "cannot be a grid axis"),
    ({"grid": {'"train.lr"': "0.1"}}, 'grid."train.lr"', "an axis is a list"),
    ({"grid": {'"train.lr"': "{ logspace = [0, 1, 3] }"}}, 'grid."train.lr".logspace', "a, b > 0"),
    (
        {"grid": {'"data.feature_probability"': "[0.5, 1.2]"}},
        'grid."data.feature_probability"[1]',
        "outside (0, 1]",
    ),
    (
        {
            "grid": {'"model.n_features"': "[5, 3]"},
            "data": {"feature_probability": "[0.1, 0.1, 0.1, 0.1, 0.1]"},
        },
        "data.feature_probability",
        "needs n_features = 3 entries, got 5",
    ),
    ({"scale.smoke": {"train.stepz": "3"}}, "scale.smoke.train.stepz", "unknown key"),
    ({"scale.huge": {"train.steps": "3"}}, "scale.huge", "unknown key"),
    ({"data": {"varied_feature": "9"}}, "data.varied_feature", "index 9 outside the 5 features"),
    ({"data": {"structure": '"hierarchical"'}}, "data.set_size", "a parent and a child"),
    (
        {"data": {"structure": '"hierarchical"', "set_size": "5", "feature_probability": "0.3"}},
        "data.feature_probability",
        "sum to 1.2 > 1",
    ),
    (
        {"data": {"structure": '"correlated"', "set_size": "2"}},
        "data.set_size",
        "2 does not divide model.n_features = 5",
    ),
    ({"data": {"n_samples": "100", "magnitude": '"half_normal"'}}, "data.n_samples", "finite"),
    (
        {"train": {"schedule": '"warmup_cosine"', "steps": "10", "warmup_steps": "10"}},
        "data.n_samples",
        "train.warmup_steps 10 must be < train.steps 10",
    ),
]


@pytest.mark.parametrize("extra, key, reason", BAD)
def test_bad_input_names_file_key_and_reason(extra, key, reason):
    with pytest.raises(SweepError) as e:
        load(sweep_text(extra))
    assert e.value.file == "t.toml" and e.value.key == key and reason in e.value.reason
    assert "\n" not in str(e.value)


def test_bad_syntax_missing_keys_and_bad_overrides():
    with pytest.raises(SweepError, match=r"^t.toml: TOML syntax error: .*line 2"):
        load('name = "t"\n[model\n')
    with pytest.raises(SweepError, match=r"^t.toml: model.n_hidden: required key is missing$"):
        load(BASE.replace("n_hidden = 2\n", ""))
    with pytest.raises(SweepError, match=r"^t.toml: --set train.stepz: unknown key"):
        load(BASE, sets=["train.stepz=3"])
    with pytest.raises(SweepError, match=r"^t.toml: --set train.steps: expected an integer"):
        load(BASE, sets=["train.steps=lots"])
    with pytest.raises(SweepError, match=r"--scale: unknown scale 'huge'"):
        load(BASE, scale="huge")
    with pytest.raises(SweepError, match=r"^nowhere.toml: cannot read"):
        sweep.load("nowhere.toml")


def test_a_shape_refuses_values_that_do_not_go_together():
    with pytest.raises(spec.ShapeError, match="^data.set_size: 2 does not divide") as e:
        spec.Shape(n_features=5, n_hidden=2, structure="correlated", set_size=2)
    assert isinstance(e.value, ValueError) and e.value.key == "data.set_size"


def test_static_keys_are_the_shape():
    """The static keys are exactly the fields of the Shape that the engine compiles for, and
    the enumerations are the engine's registries."""
    from geomtoy.engine import data, models, train

    assert train.Shape is spec.Shape
    assert spec.KINDS == tuple(models.MODELS) and spec.SAMPLERS is data.SAMPLERS
    assert spec.STRUCTURES is data.STRUCTURES and spec.MAGNITUDES == tuple(data.MAGNITUDES)
    assert spec.ACTIVATIONS == tuple(models.ACTIVATIONS)
    fields = {f.name for f in dataclasses.fields(spec.Shape)}
    assert {k.split(".", 1)[1] for k in spec.STATIC_KEYS} == fields
    assert all(k in spec.FIELDS and spec.FIELDS[k].axis for k in spec.STATIC_KEYS)


def test_unquoted_grid_keys():
    s = load(BASE + "[grid]\ndata.feature_probability = [0.1, 0.2]\ntrain.lr = [1e-3, 2e-3]\n")
    assert [a.key for a in s.axes] == ["data.feature_probability", "train.lr"]
