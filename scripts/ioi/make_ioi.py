#!/usr/bin/env python3
"""IOI prompt pairs for headhunt (the indirect-object-identification task of Wang et al. 2022,
"Interpretability in the Wild"), with the token roles path patching restricts positions to.

Normal prompt (ABBA): "When Mary and John went to the store, John gave a drink to" -> " Mary"
(the indirect object, IO). Contrast prompt: the same with the second mention of the subject
flipped to the IO ("..., Mary gave a drink to" -> " John"): same length, same names, the answer
swapped. headhunt scores logit[normal answer] - logit[contrast answer] = logit(IO) - logit(S),
the IOI logit difference, on both prompts.

Each line names its roles as character spans of the contrast prompt ("role_chars"): IO (the
first name), S1 (the second name), S2 (the name after the comma) and END (the last word, whose
position reads out the answer), each with its leading space, as a BPE token carries it. The name of each role is its part in the normal prompt.

Deterministic (no packages): `python3 scripts/ioi/make_ioi.py > data/ioi/ioi_abba.jsonl`, and
`python3 scripts/ioi/make_ioi.py --template 0 > data/ioi/ioi_abba_t0.jsonl` (one template).
"""
import json
import random

# Names that are one token with a leading space for SmolLM2 and Qwen2.5 (checked with
# `headhunt data show --model ...`: no multi-token warning).
NAMES = [
    "Mary", "John", "Tom", "James", "Anna", "Paul", "Mark", "Sarah",
    "David", "Lisa", "Peter", "Alex", "Kate", "Michael", "Emma", "Daniel",
]
PLACES = ["store", "park", "school", "hospital", "office", "station", "restaurant", "garden"]
OBJECTS = ["drink", "book", "ring", "bone", "kiss", "basketball", "computer", "necklace"]
# {A} is the IO, {B} the subject (S1, then S2).
TEMPLATES = [
    "When {A} and {B} went to the {P}, {B} gave a {O} to",
    "When {A} and {B} got a {O} at the {P}, {B} decided to give it to",
    "After {A} and {B} went to the {P}, {B} gave a {O} to",
    "Then, {A} and {B} had a long argument, and afterwards {B} said to",
    "While {A} and {B} were working at the {P}, {B} gave a {O} to",
    "Friends {A} and {B} found a {O} at the {P}. {B} gave it to",
]


def spans(template, a, b, p, o):
    """The prompt with A and B filled in and the character spans of IO, S1, S2 and END."""
    text, roles, i = "", {}, 0
    order = iter(["IO", "S1", "S2"])
    while i < len(template):
        if template.startswith("{A}", i) or template.startswith("{B}", i):
            name = a if template[i + 1] == "A" else b
            # A token of a BPE vocabulary carries its leading space (" Mary"): so does the span.
            start = len(text) - 1 if text.endswith(" ") else len(text)
            roles[next(order)] = [start, len(text) + len(name)]
            text += name
            i += 3
        elif template.startswith("{P}", i):
            text, i = text + p, i + 3
        elif template.startswith("{O}", i):
            text, i = text + o, i + 3
        else:
            text, i = text + template[i], i + 1
    roles["END"] = [text.rfind(" "), len(text)]
    return text, roles


def main(n=48, seed=0, only=None):
    rng = random.Random(seed)
    for k in range(n):
        template = TEMPLATES[k % len(TEMPLATES) if only is None else only]
        a, b = rng.sample(NAMES, 2)
        p, o = rng.choice(PLACES), rng.choice(OBJECTS)
        normal, _ = spans(template, a, b, p, o)
        # The contrast flips S2 to the IO: the template with B's second mention replaced.
        flipped = template[::-1].replace("}B{", "}A{", 1)[::-1]
        contrast, roles = spans(flipped, a, b, p, o)
        # The flipped prompt's third name is A; its position is still S2's.
        line = {
            "normal_input": normal,
            "normal_output": " " + a,
            "contrast_input": contrast,
            "contrast_output": " " + b,
            "role_chars": roles,
        }
        print(json.dumps(line))


if __name__ == "__main__":
    import sys
    # `make_ioi.py --template 0`: one template only, so that every prompt has one length (a
    # per-position scan's columns are positions).
    if sys.argv[1:2] == ["--template"]:
        main(only=int(sys.argv[2]))
    else:
        main()
