"""Answer types: inference from the question, extraction per type (the vote key), prompts, and
bad input. The cases are the answer shapes small models really write."""

from __future__ import annotations

import pytest

from edgetts.errors import EdgeTTSError
from edgetts.tts.answer_types import AnswerType, infer, resolve

GRIPPERS = ("vacuum", "soft fingers", "magnetic")
YESNO = AnswerType("yesno")
CHOICE = AnswerType("choice", GRIPPERS)
TEXT = AnswerType("text")

YESNO_CASES = [
    ("Yes.", "yes"),
    ("no", "no"),
    ("No, because the battery is at 12 %.", "no"),
    ("yes, it can reach the dock", "yes"),
    ("YES", "yes"),
    ("**No**", "no"),
    ("The route is 40 m and the battery covers 30 m, so no.", "no"),
    ("It has enough charge. Therefore, the final answer is yes.", "yes"),
    ("Step 1: 3 kg fits. Step 2: the arm lifts 5 kg. The answer is: Yes", "yes"),
    ("The answer is no. Yes, I am sure.", "no"),
    ("Answer: no", "no"),
    ("Not enough time, so the robot cannot; no.", "no"),
    ("I think so, yes!", "yes"),
    ("\n\nYes. The payload is under the limit.", "yes"),
    ("maybe", None),
    ("", None),
    ("the robot knows its way", None),  # "no" inside "knows" is not an answer
    ("Nope", None),
    ("Yes - the gap is 80 cm and the robot is 60 cm wide.", "yes"),
    ("The final answer is: NO.", "no"),
    ("Can it? No.", "no"),
    ("yes\nno", "yes"),
]

CHOICE_CASES = [
    ("B.", "B"),
    ("(B)", "B"),
    ("b) soft fingers", "B"),
    ("B", "B"),
    ("C) magnetic.", "C"),
    ("A: vacuum", "A"),
    ("Answer: soft fingers", "B"),
    ("The answer is (C).", "C"),
    ("Therefore, the final answer is A", "A"),
    ("Therefore, the final answer is magnetic gripper.", "C"),
    ("The egg is fragile, so option B is best.", "B"),
    ("Use soft fingers for the egg.", "B"),
    ("A vacuum fails on porous bread; the answer is B", "B"),
    ("vacuum", "A"),
    ("(a)", "A"),
    ("The best is choice c", "C"),
    ("Steel can be lifted by (C).", "C"),
    ("**B**", "B"),
    ("B) Soft Fingers, since the egg breaks easily", "B"),
    ("The answer is: C) magnetic", "C"),
    ("Option A.", "A"),
    ("D", None),  # no such option
    ("none of them", None),
    ("", None),
]

TEXT_CASES = [
    ("Kitchen.", "kitchen"),
    ("  the Charging Dock  ", "charging dock"),
    ("Answer: waypoint 3", "waypoint 3"),
    ("Therefore, the final answer is Room B!", "room b"),
    ('"red box"', "red box"),
    ("**blue cup**\nIt is on the left shelf.", "blue cup"),
    ("The answer is:  Shelf   4.", "shelf 4"),
    ("left", "left"),
    ("Answer: The Red Mug;", "red mug"),
    ("\\boxed{\\text{bottle}}", "bottle"),
    ("the answer is \\boxed{\\text{Loading Bay}}.", "loading bay"),
    ("Therefore, the final answer is: dock 2", "dock 2"),
    ("", None),
    (
        "First the robot goes to the hall and then it turns left and then it goes to the kitchen and then",
        None,
    ),
]

NUMBER_CASES = [
    ("Therefore, the final answer is 36.", "36"),
    ("$1,234.00", "1234"),
    ("\\boxed{12}", "12"),
    ("no number here", None),
]


@pytest.mark.parametrize(("text", "value"), YESNO_CASES)
def test_yes_no(text, value):
    assert YESNO.extract(text) == value


@pytest.mark.parametrize(("text", "value"), CHOICE_CASES)
def test_choice(text, value):
    assert CHOICE.extract(text) == value


@pytest.mark.parametrize(("text", "value"), TEXT_CASES)
def test_short_text(text, value):
    assert TEXT.extract(text) == value


@pytest.mark.parametrize(("text", "value"), NUMBER_CASES)
def test_number_is_the_gsm8k_extraction(text, value):
    assert AnswerType("number").extract(text) == value


def test_there_are_at_least_sixty_extraction_cases():
    assert len(YESNO_CASES) + len(CHOICE_CASES) + len(TEXT_CASES) + len(NUMBER_CASES) >= 60


@pytest.mark.parametrize(
    ("question", "kind", "choices"),
    [
        ("Can the robot reach the dock with 20 % battery?", "yesno", ()),
        ("Is the corridor blocked?", "yesno", ()),
        ("does the arm lift 5 kg?", "yesno", ()),
        ("Which gripper for an egg? A) vacuum B) soft fingers C) magnetic", "choice", GRIPPERS),
        ("Next waypoint? (a) hall (b) kitchen", "choice", ("hall", "kitchen")),
        ("Pick a colour: A. red B. blue", "choice", ("red", "blue")),
        ("A robot picks 3 boxes per minute. How many boxes in 12 minutes?", "number", ()),
        ("Island of the robots is far away. How far?", "number", ()),  # "Is" must open a word
        (
            "The battery is at 6%. The trip needs 13%. Can it make the trip?",
            "yesno",
            (),
        ),  # the asking sentence
        ("The lidar reads 483 cm. What is that in m?", "number", ()),
        ("The robot drove 5 m in 2 s. What was its speed in m/s?", "number", ()),
        ("Is the door open? Answer carefully.", "yesno", ()),
    ],
)
def test_inference(question, kind, choices):
    found = infer(question)
    assert (found.kind, found.choices) == (kind, choices)


def test_inference_defaults_and_given_options():
    assert infer("Name the object on the left.", default="text").kind == "text"
    given = infer("Which gripper for an egg?", choices=GRIPPERS)
    assert given == CHOICE
    assert "A) vacuum\nB) soft fingers\nC) magnetic" in given.question_text("Which gripper for an egg?")
    inline = "Which? A) vacuum B) soft fingers C) magnetic"
    assert infer(inline).question_text(inline) == inline, "inline options are not listed twice"


def test_resolve_takes_the_callers_type_and_options():
    assert resolve("What next?", "text") == TEXT
    assert resolve("Go? A) left B) right", "choice").choices == ("left", "right")
    assert resolve("Is it dark?", "auto") == YESNO
    assert resolve("Is it dark?", "number").kind == "number", "the caller's type wins over inference"


def test_display_names_the_option():
    assert CHOICE.display("B") == "B) soft fingers" and YESNO.display("yes") == "yes"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: AnswerType("colour"), "unknown answer type 'colour'"),
        (lambda: AnswerType("choice", ("only one",)), "2 to 10 options"),
        (lambda: AnswerType("choice", ("left", "Left ")), "duplicated"),
        (lambda: AnswerType("choice", ("left", " ")), "empty"),
        (lambda: AnswerType("yesno", ("a", "b")), "options need --answer-type choice"),
        (lambda: resolve("Which way?", "choice"), "a choice answer needs options"),
    ],
)
def test_bad_types_and_options_are_one_line_errors(call, message):
    with pytest.raises(EdgeTTSError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


COMMAND = {
    "type": "object",
    "properties": {"action": {"enum": ["stop", "go"]}, "speed": {"type": "number"}},
    "required": ["action", "speed"],
}
JSON = AnswerType("json", schema=__import__("json").dumps(COMMAND, sort_keys=True, separators=(",", ":")))

JSON_CASES = [
    ('{"action": "go", "speed": 0.5}', '{"action":"go","speed":0.5}'),
    ('Sure! {"speed": 0.5, "action": "go"} is the command.', '{"action":"go","speed":0.5}'),
    ('The answer is: {"action":"stop","speed":0}', '{"action":"stop","speed":0}'),
    ('```json\n{"action": "stop", "speed": 0}\n```', '{"action":"stop","speed":0}'),
    ('{not json} then {"action": "go", "speed": 1}', '{"action":"go","speed":1}'),
    ("[1, 2]", None),
    ("no braces at all", None),
]


@pytest.mark.parametrize(("text", "value"), JSON_CASES)
def test_json_is_read_canonically(text, value):
    assert JSON.extract(text) == value


def test_a_schema_makes_a_json_answer():
    assert resolve("Next command?", schema=COMMAND) == JSON
    assert resolve("Next command?", "json", schema=__import__("json").dumps(COMMAND)) == JSON
    assert JSON.answer_tokens > AnswerType("number").answer_tokens
    assert "JSON Schema" in JSON.direct_instruction() and '"required"' in JSON.direct_instruction()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: resolve("Next?", "json"), "needs a JSON Schema"),
        (lambda: resolve("Next?", schema="{not json"), "the schema is not JSON"),
        (lambda: resolve("Next?", schema="[1]"), "must be a JSON object"),
        (lambda: resolve("Next?", schema={"type": "objekt"}), "not a valid JSON Schema"),
        (lambda: resolve("Next?", "yesno", schema=COMMAND), "a schema needs --answer-type json"),
    ],
)
def test_bad_schemas_are_one_line_errors(call, message):
    pytest.importorskip("llguidance")  # it is what checks a schema's validity
    with pytest.raises(EdgeTTSError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_a_question_no_rule_types_takes_the_default():
    assert infer("Which object is in the middle?", default="text").kind == "text"
    assert infer("Which object is in the middle?").kind == "number"  # GSM8K's default
