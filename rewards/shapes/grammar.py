"""The shapes world's prompt grammar: parse natural phrasings into a structured :class:`ScenePrompt`, and phrase one.

A prompt names one to four objects drawn from :data:`SHAPES` × :data:`COLOURS`, in GenEval's six categories
(Ghosh et al. 2023, "GenEval: An Object-Focused Framework for Evaluating Text-to-Image Alignment")::

    single_object   "a circle"                              one shape, any colour
    colors          "a red circle"                          one shape in one colour
    counting        "three blue squares", "2 triangles"     exactly N (2-4) objects
    two_object      "a circle and a square"                 two objects
    color_attr      "a red circle and a blue square"        two objects, each with its own colour
    position        "a green triangle left of a yellow circle", "a red square above a blue circle"

Accepted surface forms (case-insensitive, punctuation ignored): an optional lead-in ("a photo of", "an image of", "a
picture of", "a drawing of", "an illustration of", "a render of"); determiners "a"/"an"/"the" (at least one) or
numbers 1-4 as words or digits (exactly that many); singular or plural nouns; groups joined by "and", "with", "&" or
commas; relations "left of" / "to the left of" / "on the left of" / "on the left side of", the same for "right",
"above" / "over" / "on top of", "below" / "under" / "beneath" / "underneath". A relation joins exactly two single
objects. Anything else raises a ``ValueError`` that quotes the prompt and lists these forms.

Pure Python (no torch, no ComfyUI): the renderer, the verifier, the training captions and the tests share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "MAX_OBJECTS",
    "RELATIONS",
    "SHAPES",
    "ObjectGroup",
    "Relation",
    "ScenePrompt",
    "accepted_forms",
    "parse",
    "phrase",
]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")
#: Relations, read "subject <relation> reference" (image coordinates: "above" = smaller y).
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
OPPOSITE: dict[str, str] = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
#: GenEval's categories, in its order.
CATEGORIES: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
#: The most objects a scene holds (and a prompt may ask for).
MAX_OBJECTS = 4

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_OUT_OF_RANGE = {"zero", "0", "five", "six", "seven", "eight", "nine", "ten", "many", "several", "some", "no"}
_ARTICLES = {"a", "an", "the"}
_PLURALS = {f"{s}s": s for s in SHAPES}
_LEAD_NOUNS = ("photo", "image", "picture", "drawing", "illustration", "render", "rendering", "scene")
_JOINERS = {"and", "with", "&", ","}
_WORD_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class ObjectGroup:
    """``count`` objects of ``shape`` (and ``colour``; ``None`` = any colour); ``exact``: exactly, else at least."""

    shape: str
    colour: str | None = None
    count: int = 1
    exact: bool = False

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shapes grammar: unknown shape {self.shape!r}; use one of {', '.join(SHAPES)}")
        if self.colour is not None and self.colour not in COLOURS:
            raise ValueError(f"shapes grammar: unknown colour {self.colour!r}; use one of {', '.join(COLOURS)}")
        if not 1 <= self.count <= MAX_OBJECTS:
            raise ValueError(f"shapes grammar: counts 1-{MAX_OBJECTS} are supported, got {self.count}")

    def matches(self, shape: str, colour: str) -> bool:
        """Whether an object of ``shape`` and ``colour`` fits this group's description."""
        return shape == self.shape and (self.colour is None or colour == self.colour)

    def noun_phrase(self, *, determiner: str | None = None) -> str:
        noun = self.shape if self.count == 1 else f"{self.shape}s"
        words = [self.colour, noun] if self.colour else [noun]
        if determiner is None:
            determiner = _WORD_NUMBERS[self.count] if (self.exact or self.count > 1) else _article(words[0])
        return " ".join([determiner, *words]) if determiner else " ".join(words)


@dataclass(frozen=True)
class Relation:
    """``groups[subject]`` lies ``kind`` (one of :data:`RELATIONS`) ``groups[reference]``."""

    kind: str
    subject: int = 0
    reference: int = 1

    def __post_init__(self) -> None:
        if self.kind not in RELATIONS:
            raise ValueError(f"shapes grammar: unknown relation {self.kind!r}; use one of {', '.join(RELATIONS)}")


@dataclass(frozen=True)
class ScenePrompt:
    """A parsed prompt: object groups (disjoint objects each) and at most one relation between two single objects."""

    groups: tuple[ObjectGroup, ...]
    relation: Relation | None = None
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("shapes grammar: a prompt needs at least one object")
        if self.total_objects > MAX_OBJECTS:
            raise ValueError(
                f"shapes grammar: {self.text!r} asks for {self.total_objects} objects; scenes hold at most {MAX_OBJECTS}"
            )
        if self.relation is not None:
            r = self.relation
            if len(self.groups) != 2 or {r.subject, r.reference} != {0, 1}:
                raise ValueError("shapes grammar: a relation joins exactly two objects")
            if any(g.count != 1 for g in self.groups):
                raise ValueError("shapes grammar: a relation joins two single objects, not counted groups")

    @property
    def total_objects(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def category(self) -> str:
        """GenEval category (:data:`CATEGORIES`), or ``"other"`` for mixtures such as "two circles and a square"."""
        g = self.groups
        if self.relation is not None:
            return "position"
        if len(g) == 1:
            if g[0].count > 1:
                return "counting"
            return "colors" if g[0].colour else "single_object"
        if len(g) == 2 and all(x.count == 1 for x in g):
            return "color_attr" if all(x.colour for x in g) else "two_object"
        return "other"

    @property
    def text(self) -> str:
        """The canonical phrasing (parses back to an equal prompt)."""
        if self.relation is not None:
            r = self.relation
            return f"{self.groups[r.subject].noun_phrase()} {r.kind} {self.groups[r.reference].noun_phrase()}"
        phrases = [g.noun_phrase() for g in self.groups]
        return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]

    def __str__(self) -> str:
        return self.text


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def accepted_forms() -> str:
    """A short description of the grammar for error messages and node help."""
    return (
        "accepted forms: 'a red circle', 'a circle', 'three blue squares' (numbers 1-4 as words or digits), "
        "'a red circle and a blue square' (also 'with', '&', commas), 'a green triangle left of a yellow circle' "
        "(left of / to the left of / on the left of, right of, above / over / on top of, below / under / beneath), "
        f"optionally after 'a photo of' / 'an image of'; shapes: {', '.join(SHAPES)}; colours: {', '.join(COLOURS)}; "
        f"at most {MAX_OBJECTS} objects"
    )


class _Error(ValueError):
    pass


def _tokens(prompt: str) -> list[str]:
    text = prompt.lower().replace("-", " ")
    return re.findall(r"[a-z]+|\d+|&|,", text)


def _strip_lead_in(tokens: list[str]) -> list[str]:
    """Drop "a photo of", "an image of", "photo of", "there is/are" and similar lead-ins."""
    i = 0
    if tokens[i : i + 2] in (["there", "is"], ["there", "are"]):
        return tokens[2:]
    if i < len(tokens) and tokens[i] in _ARTICLES:
        i += 1
    if i < len(tokens) and tokens[i] in _LEAD_NOUNS and tokens[i + 1 : i + 2] == ["of"]:
        return tokens[i + 2 :]
    return tokens


def _relation_at(tokens: list[str], i: int) -> tuple[str, int] | None:
    """The relation starting at ``tokens[i]`` and the index after it, or ``None``."""
    j = i
    if j < len(tokens) and tokens[j] in ("to", "on", "at"):
        j += 1
        if j < len(tokens) and tokens[j] == "the":
            j += 1
        if tokens[j : j + 1] == ["top"] and tokens[j + 1 : j + 2] == ["of"] and tokens[i] == "on":
            return "above", j + 2
    if j < len(tokens) and tokens[j] in ("left", "right"):
        side = tokens[j]
        j += 1
        if j < len(tokens) and tokens[j] in ("side", "hand"):
            j += 1
        if j < len(tokens) and tokens[j] == "of":
            return f"{side} of", j + 1
        return None
    if j != i:
        return None
    word = tokens[i] if i < len(tokens) else ""
    if word in ("above", "over"):
        return "above", i + 1
    if word in ("below", "under", "beneath", "underneath"):
        return "below", i + 1
    return None


def _noun_phrase(tokens: list[str], i: int) -> tuple[ObjectGroup, int]:
    """Parse ``[determiner] [colour] shape`` at ``tokens[i]``."""
    count, exact, has_det = 1, False, False
    word = tokens[i] if i < len(tokens) else "<end>"
    if word in _ARTICLES:
        i, has_det = i + 1, True
    elif word in _NUMBER_WORDS:
        count, exact, has_det = _NUMBER_WORDS[word], True, True
        i += 1
    elif word in _OUT_OF_RANGE or word.isdigit():
        raise _Error(f"unsupported count {word!r} (counts 1-{MAX_OBJECTS} are supported)")
    colour = None
    if i < len(tokens) and tokens[i] in COLOURS:
        colour = tokens[i]
        i += 1
    word = tokens[i] if i < len(tokens) else "<end>"
    if word in SHAPES:
        plural = False
    elif word in _PLURALS:
        plural = True
    else:
        what = "a colour or a shape" if colour is None else "a shape"
        raise _Error(f"expected {what} at {word!r}")
    if plural and not has_det:
        raise _Error(f"say how many {word} (e.g. 'two {word}')")
    shape = _PLURALS.get(word, word)
    return ObjectGroup(shape=shape, colour=colour, count=count, exact=exact), i + 1


def parse(prompt: str) -> ScenePrompt:
    """Parse a prompt of the shapes world (see the module docstring) or raise a ``ValueError`` naming it."""
    if not isinstance(prompt, str):
        raise TypeError(f"shapes grammar: a prompt must be a string, got {type(prompt).__name__}")
    tokens = _strip_lead_in(_tokens(prompt))
    try:
        if not tokens:
            raise _Error("it names no object")
        groups: list[ObjectGroup] = []
        relation: Relation | None = None
        group, i = _noun_phrase(tokens, 0)
        groups.append(group)
        while i < len(tokens):
            rel = _relation_at(tokens, i)
            if rel is not None:
                if relation is not None or len(groups) != 1:
                    raise _Error("a relation joins exactly two objects")
                group, i = _noun_phrase(tokens, rel[1])
                groups.append(group)
                relation = Relation(rel[0], 0, 1)
                continue
            if tokens[i] not in _JOINERS:
                raise _Error(f"unexpected {tokens[i]!r}")
            while i < len(tokens) and tokens[i] in _JOINERS:
                i += 1
            if relation is not None:
                raise _Error("a relation joins exactly two objects")
            group, i = _noun_phrase(tokens, i)
            groups.append(group)
        return ScenePrompt(tuple(groups), relation, source=prompt)
    except (_Error, ValueError) as e:
        reason = str(e).removeprefix("shapes grammar: ")
        raise ValueError(f"shapes grammar: cannot parse prompt {prompt!r}: {reason}; {accepted_forms()}") from None


# ----------------------------------------------------------------------------------------------- phrasing (captions)
_LEAD_INS = ("", "", "", "", "a photo of ", "an image of ", "a picture of ", "a drawing of ", "an illustration of ",
             "a render of ", "there is ")  # fmt: skip
_REL_WORDS = {
    "left of": ("left of", "to the left of", "on the left of", "on the left side of"),
    "right of": ("right of", "to the right of", "on the right of", "on the right side of"),
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "beneath", "underneath"),
}


def _random_np(group: ObjectGroup, rng: np.random.Generator) -> str:
    if group.count > 1 or group.exact:
        det = str(group.count) if rng.random() < 0.25 else _WORD_NUMBERS[group.count]
    else:
        det = ("a", "the", "")[int(rng.choice(3, p=[0.8, 0.08, 0.12]))]
        if det == "a" and (group.colour or group.shape)[0] in "aeiou":
            det = "an"
    return group.noun_phrase(determiner=det)


def phrase(prompt: ScenePrompt, rng: np.random.Generator | None = None) -> str:
    """A surface form of ``prompt``: canonical without ``rng``, else a random accepted phrasing of the same meaning.

    Random phrasings vary the lead-in, determiners ("a"/"one", digits/words), the relation words, the order of the
    groups and the direction of a relation ("A left of B" = "B right of A"); they always parse back to ``prompt``
    (up to the order of its groups).
    """
    if rng is None:
        return prompt.text
    lead = _LEAD_INS[int(rng.integers(len(_LEAD_INS)))]
    groups = list(prompt.groups)
    if prompt.relation is not None:
        r = prompt.relation
        subject, reference, kind = groups[r.subject], groups[r.reference], r.kind
        if rng.random() < 0.5:
            subject, reference, kind = reference, subject, OPPOSITE[kind]
        words = _REL_WORDS[kind][int(rng.integers(len(_REL_WORDS[kind])))]
        return f"{lead}{_random_np(subject, rng)} {words} {_random_np(reference, rng)}"
    order = rng.permutation(len(groups))
    phrases = [_random_np(groups[k], rng) for k in order]
    if len(phrases) == 1:
        return lead + phrases[0]
    joiner = (" and ", " and ", " and ", " with ", ", ", " & ")[int(rng.integers(6))]
    return lead + ", ".join(phrases[:-1]) + joiner + phrases[-1]


def without_colours(prompt: ScenePrompt) -> ScenePrompt:
    """``prompt`` with every colour dropped; two single objects of the same shape become "two <shape>s"."""
    groups = tuple(replace(g, colour=None) for g in prompt.groups)
    if prompt.relation is None and len(groups) == 2 and groups[0].shape == groups[1].shape:
        merged = ObjectGroup(groups[0].shape, None, groups[0].count + groups[1].count, exact=True)
        return ScenePrompt((merged,))
    return ScenePrompt(groups, prompt.relation)
