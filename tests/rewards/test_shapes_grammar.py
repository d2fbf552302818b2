"""The shapes grammar parses natural phrasings of GenEval's categories and refuses the rest with a useful error."""

from __future__ import annotations

import numpy as np
import pytest

from rewards.shapes.cases import random_prompt
from rewards.shapes.grammar import CATEGORIES, ObjectGroup, Relation, ScenePrompt, parse, phrase, without_colours

G = ObjectGroup


@pytest.mark.parametrize(
    ("text", "groups", "relation", "category"),
    [
        ("a circle", (G("circle"),), None, "single_object"),
        ("a red circle", (G("circle", "red"),), None, "colors"),
        ("An image of a RED circle.", (G("circle", "red"),), None, "colors"),
        ("red circle", (G("circle", "red"),), None, "colors"),
        ("two blue circles", (G("circle", "blue", 2, True),), None, "counting"),
        ("2 blue circles", (G("circle", "blue", 2, True),), None, "counting"),
        ("an image of three red circles", (G("circle", "red", 3, True),), None, "counting"),
        ("a photo of four triangles", (G("triangle", None, 4, True),), None, "counting"),
        ("one square", (G("square", None, 1, True),), None, "single_object"),
        ("a circle and a square", (G("circle"), G("square")), None, "two_object"),
        ("a yellow circle and a blue square", (G("circle", "yellow"), G("square", "blue")), None, "color_attr"),
        ("a yellow circle with a blue square", (G("circle", "yellow"), G("square", "blue")), None, "color_attr"),
        ("yellow circle & blue square", (G("circle", "yellow"), G("square", "blue")), None, "color_attr"),
        ("a red square above a green triangle", (G("square", "red"), G("triangle", "green")), "above", "position"),
        ("a green triangle left of a yellow circle", (G("triangle", "green"), G("circle", "yellow")), "left of",
         "position"),
        ("a green triangle to the left of the yellow circle", (G("triangle", "green"), G("circle", "yellow")),
         "left of", "position"),
        ("a blue square on the right of a red circle", (G("square", "blue"), G("circle", "red")), "right of",
         "position"),
        ("a blue square on the right side of a red circle", (G("square", "blue"), G("circle", "red")), "right of",
         "position"),
        ("a circle under a square", (G("circle"), G("square")), "below", "position"),
        ("a circle beneath a square", (G("circle"), G("square")), "below", "position"),
        ("a circle on top of a square", (G("circle"), G("square")), "above", "position"),
        ("a circle over a square", (G("circle"), G("square")), "above", "position"),
        ("two red circles and a blue square", (G("circle", "red", 2, True), G("square", "blue")), None, "other"),
        ("a red circle, a blue square and a green triangle", (G("circle", "red"), G("square", "blue"),
         G("triangle", "green")), None, "other"),
    ],
)  # fmt: skip
def test_natural_phrasings_parse(text, groups, relation, category):
    prompt = parse(text)
    assert prompt.groups == groups
    assert (prompt.relation.kind if prompt.relation else None) == relation
    assert prompt.category == category
    assert parse(prompt.text) == prompt, "the canonical text parses back to the same prompt"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a purple circle", "expected a colour or a shape at 'purple'"),
        ("a red hexagon", "expected a shape at 'hexagon'"),
        ("five circles", "unsupported count 'five'"),
        ("7 squares", "unsupported count '7'"),
        ("circles", "say how many"),
        ("a circle next to a square", "unexpected 'next'"),
        ("", "names no object"),
        ("four circles and a square", "at most 4"),
        ("two circles left of a square", "two single objects"),
        ("a circle left of a square and a triangle", "exactly two objects"),
        ("a red circle and", "at '<end>'"),
    ],
)
def test_unparseable_prompts_name_the_prompt_and_the_accepted_forms(text, needle):
    with pytest.raises(ValueError) as info:
        parse(text)
    message = str(info.value)
    assert needle in message
    assert repr(text) in message and "accepted forms" in message and "left of" in message


def test_random_phrasings_parse_back_to_the_same_meaning():
    rng = np.random.default_rng(0)
    for i in range(600):
        prompt = random_prompt(rng, CATEGORIES[i % len(CATEGORIES)])
        text = phrase(prompt, rng)
        back = parse(text)
        assert sorted(back.groups, key=repr) == sorted(prompt.groups, key=repr), text
        if prompt.relation is None:
            assert back.relation is None, text
        else:
            r, b = prompt.relation, back.relation
            same = (back.groups[b.subject], b.kind) == (prompt.groups[r.subject], r.kind)
            flipped = back.groups[b.subject] == prompt.groups[r.reference]
            assert same or flipped, text


def test_random_prompts_cover_their_category():
    rng = np.random.default_rng(1)
    for category in CATEGORIES:
        for _ in range(50):
            assert random_prompt(rng, category).category == category
    with pytest.raises(ValueError, match="unknown category"):
        random_prompt(rng, "spatial")


def test_without_colours_keeps_the_scene_true():
    assert without_colours(parse("a red circle and a blue circle")) == parse("two circles")
    assert without_colours(parse("a red circle left of a blue square")) == parse("a circle left of a square")


def test_structures_validate_themselves():
    with pytest.raises(ValueError, match="unknown shape"):
        ObjectGroup("hexagon")
    with pytest.raises(ValueError, match="unknown colour"):
        ObjectGroup("circle", "purple")
    with pytest.raises(ValueError, match="unknown relation"):
        Relation("near")
    with pytest.raises(ValueError, match="exactly two objects"):
        ScenePrompt((G("circle"),), Relation("above"))
    with pytest.raises(TypeError, match="must be a string"):
        parse(3)  # type: ignore[arg-type]
