"""geomtoy: train thousands of toy models of superposition at once and measure their geometry.

Elhage et al. 2022, "Toy Models of Superposition" (arXiv:2209.10652). Importing the
package has no side effects: the names below load their modules on first use, and JAX is
only started by the modules that need it.

    import geomtoy
    res = geomtoy.run("pentagon", scale="smoke")     # a bundled sweep, or a TOML path
    res.instances                                     # pandas DataFrame, one row per model
    res.to_xarray()                                   # over the grid axes and seeds
    geomtoy.open("results/pentagon")                  # a results directory made before
    geomtoy.train_instances(shape, hp)                # the engine, on every CPU core
    geomtoy.analyze(W)                                # geometry of (I, m, n) weights
    geomtoy.zoo.load("pentagon")                      # a trained reference model, by name
"""

__version__ = "0.2.0"

_EXPORTS = {
    "run": ("geomtoy.api", "run"),
    "open": ("geomtoy.results.frames", "open_results"),
    "train_instances": ("geomtoy.api", "train_instances"),
    "Results": ("geomtoy.results.frames", "Results"),
    "analyze": ("geomtoy.geometry", "analyze"),
    "HParams": ("geomtoy.engine.train", "HParams"),
    "Shape": ("geomtoy.engine.train", "Shape"),
    "explore": ("geomtoy.viz.explore", None),  # modules: geomtoy.explore.show, geomtoy.plot....
    "plot": ("geomtoy.viz.plot", None),
    "theory": ("geomtoy.geometry.theory", None),  # closed forms; its name before geometry/
    "zoo": ("geomtoy.zoo", None),  # reference models: geomtoy.zoo.load("pentagon")
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'geomtoy' has no attribute {name!r}")
    import importlib

    module, attr = _EXPORTS[name]
    if module == "geomtoy.engine.train":  # before the engine starts JAX: one CPU device per core
        from geomtoy.engine import parallel

        parallel.configure_cpu_devices()
    loaded = importlib.import_module(module)
    value = loaded if attr is None else getattr(loaded, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])
