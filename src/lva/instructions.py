"""The instruction language: three tasks, synonymous verb phrases, six colours, four object types.

The complete list (task x verb x colour x type) is the data every later chapter imports: the
agent is trained on it, and each language model embeds exactly these strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

TASKS: tuple[str, ...] = ("goto", "pickup", "escape")
TASK_NAMES: dict[str, str] = {"goto": "GO-TO", "pickup": "PICK-UP", "escape": "ESCAPE-FROM"}

#: Synonymous verb phrases per task; the first one is the canonical phrase.
VERBS: dict[str, tuple[str, ...]] = {
    "goto": ("go to", "walk to", "move to", "head to", "navigate to", "reach"),
    "pickup": ("pick up", "grab", "take", "collect", "lift", "fetch"),
    "escape": ("escape from", "run away from", "get away from", "move away from", "flee from", "keep away from"),
}

#: The six MiniGrid colours, in MiniGrid's own index order.
COLORS: tuple[str, ...] = ("red", "green", "blue", "purple", "yellow", "grey")

#: Object types each task can name: doors cannot be picked up.
OBJECT_TYPES: dict[str, tuple[str, ...]] = {
    "goto": ("ball", "box", "key", "door"),
    "pickup": ("ball", "box", "key"),
    "escape": ("ball", "box", "key", "door"),
}

ALL_TYPES: tuple[str, ...] = ("ball", "box", "key", "door")


@dataclass(frozen=True, order=True)
class Instruction:
    """One instruction: what to do (task, via a verb phrase) with which object (colour, type)."""

    task: str
    verb: str
    color: str
    obj_type: str

    @property
    def text(self) -> str:
        """The English string, e.g. ``"go to the red ball"``."""
        return f"{self.verb} the {self.color} {self.obj_type}"

    @property
    def meaning(self) -> tuple[str, str, str]:
        """What the instruction means, ignoring the synonym chosen: (task, colour, type)."""
        return (self.task, self.color, self.obj_type)

    def __str__(self) -> str:
        return self.text


@cache
def all_instructions() -> tuple[Instruction, ...]:
    """Every instruction, ordered by task, verb, colour and type (a stable, documented order)."""
    return tuple(
        Instruction(task, verb, color, obj_type)
        for task in TASKS
        for verb in VERBS[task]
        for color in COLORS
        for obj_type in OBJECT_TYPES[task]
    )


def instructions_for(task: str) -> tuple[Instruction, ...]:
    """The instructions of one task, in the order of :func:`all_instructions`."""
    check_task(task)
    return tuple(i for i in all_instructions() if i.task == task)


def check_task(task: str) -> str:
    """Return ``task`` if valid, else raise ``ValueError`` naming the valid tasks."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    return task


@cache
def _by_text() -> dict[str, Instruction]:
    return {i.text: i for i in all_instructions()}


def parse(text: str) -> Instruction:
    """The :class:`Instruction` whose text is ``text`` (whitespace and case normalised)."""
    key = " ".join(text.lower().split())
    try:
        return _by_text()[key]
    except KeyError:
        raise ValueError(
            f"not an instruction of this world: {text!r}; instructions look like "
            f"'<verb> the <colour> <type>' with verbs {sorted({v for vs in VERBS.values() for v in vs})}, "
            f"colours {list(COLORS)} and types {list(ALL_TYPES)} (doors cannot be picked up)"
        ) from None


def vocabulary() -> tuple[str, ...]:
    """Every word used by some instruction, sorted."""
    return tuple(sorted({w for i in all_instructions() for w in i.text.split()}))
