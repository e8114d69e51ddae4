"""Ready for the accelerator without one: the programs a run compiles (init, training
chunk, evaluation, geometry analysis) export for the `cuda` and `tpu` platforms with
`jax.export` (no device needed), for every model kind, on one device and over a mesh,
and the exported StableHLO holds no host callback and no float64."""

import re

import jax
import numpy as np
import pytest
from jax import export

from geomtoy.engine import models, parallel, train
from geomtoy.geometry import polytopes
from geomtoy.spec import Shape

PLATFORMS = ("cuda", "tpu")
I, N, M = 8, 5, 2
SEED = jax.ShapeDtypeStruct((), np.uint32)
CALLBACK = re.compile(r"callback|host_compute|SendToHost|RecvFromHost", re.IGNORECASE)
F64 = re.compile(r"\bf64\b|xf64>|complex<f64>")
COLLECTIVE = re.compile(
    r"stablehlo\.(all_gather|all_reduce|all_to_all|collective_\w+|reduce_scatter)\b"
)


def _ops(text: str) -> str:
    """Program text without its debug locations (which name Python files and functions,
    not operations)."""
    lines = text.splitlines()
    return "\n".join(re.sub(r"\s*loc\(.*", "", ln) for ln in lines if not ln.startswith("#loc"))


def _programs(kind: str, mesh=None) -> dict:
    """(jitted function, arguments) of each program of a run, on the GPU/TPU path: all
    instances of a device in one vmap (block None)."""
    shape = Shape(n_features=N, n_hidden=M, kind=kind, batch_size=64, eval_samples=1024)
    hp = train.HParams.create(I, N, feature_probability=0.1)
    state = jax.eval_shape(lambda h: train.init_state(shape, h), hp)
    if mesh is not None:
        (state, hp), mesh = parallel.placed(train.init_state(shape, hp), hp, mesh=mesh)
    return train.programs(state, hp, shape, 5, mesh=mesh, block=None) | {
        "analysis": (polytopes._stats_instances, (jax.ShapeDtypeStruct((I, M, N), np.float32),)),
    }


def _check(exported: export.Exported, platform: str, what: str) -> None:
    assert exported.platforms == (platform,), what
    _check_text(_ops(exported.mlir_module()), what)


def _check_text(text: str, what: str) -> None:
    assert not CALLBACK.search(text), f"{what}: host callback in the exported program"
    assert not F64.search(text), f"{what}: float64 in the exported program"
    assert "stablehlo" in text  # really the program text, so the checks above can fail


@pytest.mark.parametrize("kind", models.KINDS)
def test_programs_export_for_cuda_and_tpu(kind):
    for name, (fn, args) in _programs(kind).items():
        if name == "analysis" and kind != models.KINDS[0]:
            continue  # the analysis sees W only: the same program for every kind
        for platform in PLATFORMS:
            _check(export.export(fn, platforms=[platform])(*args), platform, f"{kind} {name}")


def test_mesh_programs_export_for_cuda_without_collectives():
    mesh = parallel.instance_mesh(4)
    for name, (fn, args) in _programs("relu_output", mesh).items():
        if name == "analysis":
            continue
        exported = export.export(fn, platforms=["cuda"])(*args)
        _check(exported, "cuda", name)
        assert exported.nr_devices == 4, name
        found = COLLECTIVE.findall(_ops(exported.mlir_module()))
        assert not found, f"{name} holds {found}"


def test_the_checks_catch_a_callback_and_float64():
    """The inspection is not vacuous: a debug print and a float64 are found. (jax.export
    refuses host callbacks outright, so the print is checked in the lowered text.)"""

    def noisy(x):
        jax.debug.print("x {x}", x=x)
        return x * 2

    with pytest.raises(AssertionError, match="host callback"):
        _check_text(_ops(jax.jit(noisy).lower(SEED).as_text()), "noisy")
    with jax.enable_x64(True):
        wide = export.export(jax.jit(lambda x: x * 2.0), platforms=["cuda"])(
            jax.ShapeDtypeStruct((3,), np.float64)
        )
    with pytest.raises(AssertionError, match="float64"):
        _check(wide, "cuda", "wide")
