"""The pipeline's one seam for what runs beside the stages: local servers a stage talks to.

`distill run` fills it with the demo's wiring when the recipe has `demo:` (the built-in teacher and the
tiny student, in `distill/demo/`); the pipeline itself never imports the demo. Without services, the
recipe is used as written and nothing is started.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from distill.recipe import Recipe
    from distill.run import RunDir

__all__ = ["NoServices", "Services"]


class Services(Protocol):
    """Fills settings in before the run, and serves what one stage needs while it runs."""

    def prepare(self, recipe: Recipe, run: RunDir) -> Recipe:
        """The recipe with the services' settings filled in (fingerprinted like the user's own)."""
        ...

    def serve(
        self,
        recipe: Recipe,
        run: RunDir,
        *,
        teacher_needed: bool = False,
        student_needed: bool = False,
        student_base_needed: bool = False,
    ) -> AbstractContextManager[Recipe]:
        """Start what the next stage needs; yields the recipe with the live URLs; stops it on exit."""
        ...


class NoServices:
    """Nothing beside the stages: the recipe as written."""

    def prepare(self, recipe: Recipe, run: RunDir) -> Recipe:
        return recipe

    @contextmanager
    def serve(
        self,
        recipe: Recipe,
        run: RunDir,
        *,
        teacher_needed: bool = False,
        student_needed: bool = False,
        student_base_needed: bool = False,
    ) -> Iterator[Recipe]:
        yield recipe
