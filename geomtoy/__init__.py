"""geomtoy: train thousands of toy models of superposition at once and measure their geometry.

Elhage et al. 2022, "Toy Models of Superposition" (arXiv:2209.10652). Importing the
package has no side effects: JAX is only started by the modules that need it.
"""

__version__ = "0.1.0"
