"""distill: distil reasoning data from a teacher, verify it, filter it, publish it, train and evaluate a student."""

from distill.errors import DistillError
from distill.run import RunDir

__version__ = "0.1.0"

__all__ = ["DistillError", "RunDir", "__version__"]
