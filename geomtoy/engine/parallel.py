"""Devices and processes: the only module that knows about either (docs/design.md, layout).

Instances never talk to each other, so parallelism here is pure placement: no step of
training or evaluation ever needs a collective.

Within one process
    The leading (instance) axis of every per-instance array is split over the process's
    local devices, with a one-axis mesh named `inst` (`instance_mesh`, `place`). The
    engine runs its per-device code under `jax.shard_map` over that axis
    (`map_instances`), so each device trains only its own instances and the compiled
    chunk holds no all-gather, all-reduce, collective-permute or all-to-all (a test
    checks the compiled text). On CPU, devices are also how a run uses the cores: the
    engine trains a CPU device's instances in small cache-sized blocks, one after the
    other, on one thread, so `--devices N` with N = the number of cores (the default on
    CPU, `setup`) runs N such loops side by side (bench/RESULTS.md).

Across processes (multi-host TPU or GPU batch jobs)
    `GEOMTOY_DISTRIBUTED=1` asks `setup` to call `jax.distributed.initialize()` first
    thing (Cloud TPU fills in its arguments; elsewhere set GEOMTOY_COORDINATOR=host:port,
    GEOMTOY_NUM_PROCESSES and GEOMTOY_PROCESS_ID). SIGTERM (a preemption notice) stays
    geomtoy's: every process that gets it checkpoints and exits 143, as a single run. Each process then trains a disjoint
    share of the sweep's instance blocks on its own local devices only: block b belongs
    to process b % process_count (`owns_block`, `process_blocks`). That share is fixed by
    the block index alone, so it needs no communication, is the same on every process,
    and survives a restart with the same process count; blocks are the runner's units of
    resume, so a share is whole files. Each process writes its own part files (the block
    files, or `part_name()` = `part-{process:03d}`), and process 0, or `geomtoy merge
    DIR`, joins them once all are there. Since an instance's random stream depends only
    on (root seed, instance id, seed, step) (geomtoy.engine.rng), the merged tables equal a
    single-process run's, whatever the process count (a test runs 2 processes).

    On a Cloud TPU VM pod slice, the same command runs on every worker; the results
    directory must be on storage all workers see (a GCS bucket mounted with gcsfuse, or
    Filestore), or copied together before `geomtoy merge`:

        gcloud compute tpus tpu-vm ssh my-tpu --zone=us-central2-b --worker=all \\
          --command="cd geomtoy && GEOMTOY_DISTRIBUTED=1 .venv/bin/geomtoy run \\
                     sweeps/uniform_superposition.toml --scale paper \\
                     --out /mnt/results/uniform_superposition"

    `make tpu-command` prints this line (`tpu_command`).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding

from geomtoy.errors import PEER_LOST, SweepError

INST = "inst"
"""The one mesh axis: model instances."""

DISTRIBUTED_ENV = "GEOMTOY_DISTRIBUTED"
TPU_COMMAND = (
    'gcloud compute tpus tpu-vm ssh {name} --zone={zone} --worker=all --command="cd {repo} && '
    'GEOMTOY_DISTRIBUTED=1 .venv/bin/geomtoy run {sweep} --scale {scale} --out {out}"'
)

def tpu_command(
    name: str = "$TPU_NAME",
    zone: str = "$ZONE",
    repo: str = "geomtoy",
    sweep: str = "sweeps/uniform_superposition.toml",
    scale: str = "paper",
    out: str = "/mnt/results/uniform_superposition",
) -> str:
    """The line that runs a sweep on every worker of a Cloud TPU VM (`make tpu-command`).
    `out` must be on storage all workers share (gcsfuse bucket, Filestore), or the part
    files are copied together afterwards and joined with `geomtoy merge DIR`."""
    return TPU_COMMAND.format(name=name, zone=zone, repo=repo, sweep=sweep, scale=scale, out=out)


# --- processes --------------------------------------------------------------------


def distributed_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for a multi-process job (GEOMTOY_DISTRIBUTED=1)."""
    env = os.environ if environ is None else environ
    return env.get(DISTRIBUTED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def initialize_distributed(environ: Mapping[str, str] | None = None) -> bool:
    """`jax.distributed.initialize()` if the environment asks for it; True if this is a
    multi-process job. Must run before anything touches a JAX backend. Optional
    GEOMTOY_COORDINATOR (host:port), GEOMTOY_NUM_PROCESSES and GEOMTOY_PROCESS_ID are
    passed on; without them JAX detects the cluster (Cloud TPU, SLURM, ...)."""
    env = os.environ if environ is None else environ
    if not distributed_requested(env):
        return False
    if jax.distributed.is_initialized():
        return True
    kwargs: dict[str, Any] = {}
    if env.get("GEOMTOY_COORDINATOR"):
        kwargs["coordinator_address"] = env["GEOMTOY_COORDINATOR"]
    if env.get("GEOMTOY_NUM_PROCESSES"):
        kwargs["num_processes"] = int(env["GEOMTOY_NUM_PROCESSES"])
    if env.get("GEOMTOY_PROCESS_ID"):
        kwargs["process_id"] = int(env["GEOMTOY_PROCESS_ID"])
    # Bounded waits: a restarted process of a job whose peers are gone must not hang.
    init_timeout = int(env.get("GEOMTOY_INIT_TIMEOUT") or INIT_TIMEOUT_S)
    kwargs["initialization_timeout"] = init_timeout
    kwargs["heartbeat_timeout_seconds"] = int(env.get("GEOMTOY_HEARTBEAT_TIMEOUT") or 60)
    # SIGTERM stays geomtoy's (geomtoy.runs.signals): JAX's preemption service would
    # take it in native code, and the run would train on and exit 0. Processes share no
    # collective, so each one checkpoints at its own next chunk boundary and exits 143;
    # no step agreement (multihost_utils.reached_preemption_sync_point) is needed.
    jax.config.update("jax_enable_preemption_service", False)
    try:
        jax.distributed.initialize(**kwargs)
    except Exception as e:  # XlaRuntimeError: DEADLINE_EXCEEDED, UNAVAILABLE, ...
        why = f"not all processes connected within {init_timeout} s: {str(e).splitlines()[0][:120]}"
        raise SweepError("jax.distributed", None, PEER_LOST.format(why=why)) from None
    return True


INIT_TIMEOUT_S = 120
"""Seconds `initialize_distributed` waits for every process (GEOMTOY_INIT_TIMEOUT)."""


def process_index() -> int:
    """This process's index in a multi-process job (0 when alone)."""
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def owns_block(block: int, index: int | None = None, count: int | None = None) -> bool:
    """Whether instance block `block` is this process's to train: b % count == index."""
    index = process_index() if index is None else index
    count = process_count() if count is None else count
    return block % count == index


def process_blocks(n_blocks: int, index: int | None = None, count: int | None = None) -> list[int]:
    """The block indices of this process's share, in training order."""
    return [b for b in range(n_blocks) if owns_block(b, index, count)]


def part_name(index: int | None = None) -> str:
    """File stem of a process's part file: `part-000`, `part-001`, ..."""
    return f"part-{process_index() if index is None else index:03d}"


# --- devices ----------------------------------------------------------------------


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def backend_started() -> bool:
    """Whether JAX has started its backends. Public APIs only: JAX refuses (RuntimeError)
    to change the CPU device count once they are up, so a changed value is the probe, and
    the old value goes back at once when the change was accepted."""
    current = jax.config.jax_num_cpu_devices
    try:
        jax.config.update("jax_num_cpu_devices", 2 if current == 1 else 1)
    except RuntimeError:
        return True
    jax.config.update("jax_num_cpu_devices", current)
    return False


def set_cpu_device_count(n: int) -> bool:
    """Ask for n CPU devices (one per core is what the engine wants on CPU). Only
    possible before the first JAX computation; returns whether it took effect."""
    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except RuntimeError:  # the backends are up: the count is what it is
        return len(jax.local_devices(backend="cpu")) == n
    return True


def instance_mesh(devices: int | None = None) -> Mesh:
    """A one-axis mesh `inst` over this process's first `devices` local devices (all by
    default). Local devices only: processes never share an array. The axis is `Auto`,
    not `Explicit`: results leave the engine as ordinary sharded arrays that any eager
    code (indexing, np.asarray, the geometry functions) can use without sharding
    annotations; inside the engine `shard_map` makes the split explicit anyway."""
    local = jax.local_devices()
    n = len(local) if devices is None else int(devices)
    if not 1 <= n <= len(local):
        raise ValueError(f"devices must be in 1..{len(local)} (local devices here), got {devices}")
    return jax.make_mesh((n,), (INST,), axis_types=(jax.sharding.AxisType.Auto,), devices=local[:n])


def current_mesh(mesh: Mesh | None = None) -> Mesh | None:
    """The instance mesh training uses: `mesh` if given, else the one set with
    `jax.set_mesh` (when it has the `inst` axis), else None. There is no mesh of
    geomtoy's own: callers pass theirs (the runner, the API) or set JAX's. A mesh of
    one device counts as none."""
    if mesh is None:
        try:
            context = jax.sharding.get_mesh()
        except ValueError:  # under a trace (jit, eval_shape): only an explicit mesh counts
            return None
        mesh = None if context.empty or INST not in context.axis_names else context
    return mesh if mesh is not None and mesh.size > 1 else None


@contextlib.contextmanager
def devices_used(devices: int | Mesh | None = None) -> Iterator[Mesh | None]:
    """Within a `with` block, train over `devices` local devices (a count, a mesh, or
    None: all local devices), through `jax.set_mesh`; yields the mesh (None for one)."""
    mesh = current_mesh(devices if isinstance(devices, Mesh) else instance_mesh(devices))
    if mesh is None:
        with jax.set_mesh(None):
            yield None
    else:
        with jax.set_mesh(mesh):
            yield mesh


def setup(devices: int | str | None = "auto") -> Mesh | None:
    """The CLI's hook, called before any JAX computation (`geomtoy run --devices N`).

    1. GEOMTOY_DISTRIBUTED=1: `jax.distributed.initialize()`.
    2. On CPU, `devices` ("auto": one per core) becomes the CPU device count, as the
       engine trains one instance loop per device.
    Returns the mesh that splits instances over `devices` local devices ("auto" or
    None: all of them), None for one device; the caller passes it on (runner.run_sweep).
    """
    initialize_distributed()
    want = None if devices in (None, "auto") else int(devices)
    if want is not None and want < 1:
        raise ValueError(f"--devices must be a positive integer, got {devices!r}")
    cpu = _cpu_backend() and not backend_started()
    have = cpu_cores() if cpu else len(jax.local_devices())
    if want is not None and want > have:
        what = "CPU cores" if cpu else f"local {jax.default_backend()} devices"
        raise SweepError("--devices", None, f"{want} asked, but there are {have} {what} here")
    configure_cpu_devices(want)
    return current_mesh(instance_mesh(want))


def _cpu_backend() -> bool:
    """Whether JAX's backend is, or will be, the CPU."""
    platform = os.environ.get("JAX_PLATFORMS", "").split(",")[0] or None
    return platform == "cpu" or (platform is None and _only_cpu_installed())


def configure_cpu_devices(want: int | None = None) -> None:
    """Before JAX starts, on a CPU backend: `want` CPU devices (default one per core), the
    layout the engine trains fastest on. Does nothing once JAX has started or when an
    accelerator will be the backend."""
    if _cpu_backend() and not backend_started():
        set_cpu_device_count(want or cpu_cores())


def _only_cpu_installed() -> bool:
    """No accelerator plugin is installed (so the default backend will be CPU)."""
    import importlib.util

    return not any(
        importlib.util.find_spec(m) is not None
        for m in ("jax_cuda12_plugin", "jax_cuda13_plugin", "libtpu", "jax_rocm60_plugin")
    )


def instance_multiple(mesh: Mesh | None = None) -> int:
    """Pad instance blocks to a multiple of this (the device count of `current_mesh(mesh)`),
    so that every block splits evenly over the devices (`Sweep.blocks(multiple=...)`)."""
    mesh = current_mesh(mesh)
    return mesh.size if mesh is not None else 1


def place(tree, mesh: Mesh | None = None):
    """Put the leading (instance) axis of every leaf of `tree` over the mesh
    (`current_mesh(mesh)`). Leaves already placed are not copied; a tree whose instance count
    does not divide evenly over the devices stays where it is (the runner pads its blocks
    to a multiple of the device count)."""
    mesh = current_mesh(mesh)
    if mesh is None:
        return tree
    leaves = jax.tree.leaves(tree)
    if not leaves or any(jnp.ndim(a) == 0 or jnp.shape(a)[0] % mesh.size for a in leaves):
        return tree
    return jax.device_put(tree, NamedSharding(mesh, jax.P(INST)))


def mesh_of(tree) -> Mesh | None:
    """The instance mesh a placed tree lives on, or None if it is on one device."""
    for leaf in jax.tree.leaves(tree):
        sharding = getattr(leaf, "sharding", None)
        if isinstance(sharding, NamedSharding) and INST in sharding.mesh.axis_names:
            if sharding.spec and sharding.spec[0] == INST and sharding.mesh.size > 1:
                return sharding.mesh
    return None


def platform_of(tree) -> str:
    """The platform ("cpu", "gpu", "tpu") the tree's arrays live on."""
    for leaf in jax.tree.leaves(tree):
        devices = getattr(leaf, "devices", None)
        if callable(devices):
            try:
                return next(iter(devices())).platform
            except Exception:  # a tracer: no devices
                break
    return jax.default_backend()


def local_instances(n_instances: int, mesh: Mesh | None) -> int:
    """Instances each device holds."""
    return n_instances // mesh.size if mesh is not None else n_instances


def placed(*trees, mesh: Mesh | None = None):
    """(trees placed over the instance mesh, that mesh or None). Trees already on an
    instance mesh keep theirs; others go on `current_mesh(mesh)` (see `place`)."""
    mesh = next((m for m in map(mesh_of, trees) if m is not None), None) or mesh
    trees = tuple(place(t, mesh) for t in trees)
    return trees, next((m for m in map(mesh_of, trees) if m is not None), None)


def on_each_device(fn: Callable, shared, per_instance, *, mesh: Mesh | None):
    """fn(shared, per_instance) on each device's own instances, inside `jit`: a
    `jax.shard_map` over `inst` (shared replicated), or fn itself without a mesh."""
    if mesh is None or mesh.size == 1:
        return fn(shared, per_instance)
    return jax.shard_map(fn, mesh=mesh, in_specs=(jax.P(), jax.P(INST)), out_specs=jax.P(INST))(
        shared, per_instance
    )


def map_instances(
    fn: Callable, shared, per_instance, *, mesh: Mesh | None, block: int | None, batched=False
):
    """fn(shared, one_instance) over the leading axis of `per_instance`, inside `jit`.

    Each device maps its own instances (`on_each_device`: no collectives). On a device,
    instances run as one `vmap` over all of them, or, given `block`, as a sequential loop
    over vmapped blocks of about `block` instances (`lax.map`), so that one block's step
    temporaries stay in cache on CPU. Blocks are balanced and the last is padded with
    copies of the last instance (computed, then dropped), so all blocks have one shape
    and the step compiles once. `batched`: fn takes a whole block (a leading instance
    axis) and vmaps itself, so that its instances can share work (one batch for SAEs
    that read one source).
    """

    def local(shared, xs):
        n = jax.tree.leaves(xs)[0].shape[0]
        one = (lambda x: fn(shared, x)) if batched else jax.vmap(lambda x: fn(shared, x))
        if block is None or block >= n:
            return one(xs)
        k = math.ceil(n / block)
        b = math.ceil(n / k)
        pad = k * b - n
        if pad:
            xs = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]), xs)
        if batched:  # a scan over the blocks, each given whole to fn
            split = jax.tree.map(lambda a: a.reshape(k, b, *a.shape[1:]), xs)
            out = jax.lax.map(one, split)
            out = jax.tree.map(lambda a: a.reshape(k * b, *a.shape[2:]), out)
        else:
            out = jax.lax.map(lambda x: fn(shared, x), xs, batch_size=b)
        return jax.tree.map(lambda a: a[:n], out) if pad else out

    return on_each_device(local, shared, per_instance, mesh=mesh)
