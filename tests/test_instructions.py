import pytest

from lva.instructions import (
    COLORS,
    OBJECT_TYPES,
    TASKS,
    VERBS,
    all_instructions,
    instructions_for,
    parse,
    vocabulary,
)


def test_counts_are_the_product_of_verbs_colours_and_types():
    for task in TASKS:
        assert len(instructions_for(task)) == len(VERBS[task]) * len(COLORS) * len(OBJECT_TYPES[task])
    assert len(all_instructions()) == sum(len(instructions_for(t)) for t in TASKS) == 396


def test_instructions_are_unique_and_every_synonym_is_used():
    texts = [i.text for i in all_instructions()]
    assert len(set(texts)) == len(texts)
    for task in TASKS:
        assert len(VERBS[task]) >= 6
        used = {i.verb for i in instructions_for(task)}
        assert used == set(VERBS[task])
        # each synonym names every (colour, type) of its task exactly once
        for verb in VERBS[task]:
            pairs = [(i.color, i.obj_type) for i in instructions_for(task) if i.verb == verb]
            assert len(pairs) == len(set(pairs)) == len(COLORS) * len(OBJECT_TYPES[task])


def test_no_verb_phrase_is_shared_between_tasks():
    phrases = [v for t in TASKS for v in VERBS[t]]
    assert len(phrases) == len(set(phrases))


def test_doors_cannot_be_picked_up():
    assert not [i for i in instructions_for("pickup") if i.obj_type == "door"]


def test_parse_round_trips_and_normalises():
    for ins in all_instructions():
        assert parse(ins.text) == ins
    assert parse("  Go  to the RED ball ").text == "go to the red ball"


def test_parse_rejects_unknown_text_naming_the_grammar():
    with pytest.raises(ValueError, match="colours"):
        parse("pick up the red door")
    with pytest.raises(ValueError, match="verbs"):
        parse("dance with the red ball")


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(ValueError, match="goto, pickup, escape"):
        instructions_for("jump")


def test_vocabulary_covers_every_word():
    words = set(vocabulary())
    assert all(set(i.text.split()) <= words for i in all_instructions())
