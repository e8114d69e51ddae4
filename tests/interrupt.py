"""A simulated Ctrl-C for resume tests: progress that raises after n chunk reports."""

from geomtoy.runs.progress import Progress


class Interrupt(Exception):
    pass


class StopAfter(Progress):
    """Silent progress that raises `Interrupt` after `n` chunk reports."""

    def __init__(self, n):
        super().__init__(stream=None)
        self.n = n

    def chunk(self, **kw):
        super().chunk(**kw)
        self.n -= 1
        if self.n == 0:
            raise Interrupt
