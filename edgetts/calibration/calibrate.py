"""`edgetts calibrate`: run a store entry over an eval set and keep acc(budget, N) with it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import onnxruntime as ort
from tokenizers import Tokenizer

from .. import __version__, evals, store
from ..errors import EdgeTTSError
from ..runtime.onnx_model import OnnxCausalLM, default_threads
from ..runtime.prompting import MODES, PROGRAM, STEPS
from ..runtime.sampling import SamplingParams
from ..tts import constrain, program
from .runner import calibrate_question
from .tables import Calibration, calibration_path, parse

DEFAULT_BUDGETS = (0, 32, 64, 128, 256, 512)


def calibrate(
    model: str, eval_set: str = "gsm8k", start: int = 0, limit: int | None = None,
    budgets: tuple[int, ...] = DEFAULT_BUDGETS, samples: int = 16, answer_tokens: int = 16, seed: int = 0,
    threads: int | None = None, restart: bool = False, constrained: bool | None = None,
    on_question: Callable[[int, int], None] | None = None, on_step: Callable[[], None] | None = None,
    mode: str = STEPS,
) -> Calibration:  # fmt: skip
    """Calibrate ``model`` on questions ``start…`` of ``eval_set``; resumes an interrupted run
    with the same settings, refuses to mix settings unless ``restart``. ``constrained``: decode
    the answers under each type's grammar, as the runtime then does for this table (default:
    where the grammar extra is installed). ``mode``: ``program`` calibrates program-aided
    answers into their own file (questions of other answer types are skipped: a program
    computes a number)."""
    if samples < 1:
        raise EdgeTTSError(f"--samples must be at least 1 (got {samples})")
    if not budgets or min(budgets) < 0 or len(set(budgets)) != len(budgets):
        raise EdgeTTSError(f"budgets must be distinct token counts >= 0 (got {list(budgets)})")
    if mode not in MODES:
        raise EdgeTTSError(f"unknown reasoning mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == PROGRAM and 0 in budgets:
        budgets = tuple(b for b in budgets if b > 0)  # budget 0 is the direct answer: steps' table
        if not budgets:
            raise EdgeTTSError("program mode needs budgets above 0 (--budgets 64,128,256)")
    if mode == PROGRAM and not program.available():
        raise EdgeTTSError("program mode needs the program extra: pip install 'edgetts[program]'")
    entry = store.get(model)
    problems = evals.load(eval_set, start, limit)
    if mode == PROGRAM:
        problems = [p for p in problems if p.kind == "number"]
    params = SamplingParams()
    if constrained is None:
        constrained = constrain.available()
    settings = {
        "budgets": sorted(budgets),
        "samples": samples,
        "answer_tokens": answer_tokens,
        "seed": seed,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "constrained": constrained,
        **({"mode": mode} if mode != STEPS else {}),  # files from before modes are steps'
    }
    name = evals.name_of(eval_set)
    path = calibration_path(model, name, mode)
    calibration = Calibration(model, name, settings, path=path)
    if path.exists() and not restart:
        previous = parse(path.read_text(encoding="utf-8"), str(path))
        if previous.settings != settings:
            raise EdgeTTSError(
                f"{path} was calibrated with other settings ({previous.settings}); "
                "pass --restart to replace it"
            )
        calibration.results = previous.results
        # A resumed run keeps the conditions of the sittings before it (and how many questions
        # were done by the end of each), so a table made in parts says where each part came from.
        earlier = previous.conditions.pop("earlier", [])
        if previous.results:
            earlier = [*earlier, {**previous.conditions, "questions_done": len(previous.results)}]
    else:
        earlier = []
    calibration.conditions = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "edgetts": __version__,
        "onnxruntime": ort.__version__,
        "quant": entry.manifest.quant_type,
        "threads": threads or default_threads(),
        "eval_path": evals.source(eval_set),
        **({"earlier": earlier} if earlier else {}),
    }
    lm = OnnxCausalLM(entry.path, entry.manifest, threads=threads)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    done = calibration.done()
    for number, problem in enumerate(problems):
        if on_question:
            on_question(number, len(problems))
        if problem.index in done:
            continue
        answers = calibrate_question(
            lm, tokenizer, problem.question, settings["budgets"], samples,
            answer_tokens=max(answer_tokens, problem.answer_type.answer_tokens), seed=seed, params=params,
            on_step=on_step, answer_type=problem.answer_type, constrain=constrained, mode=mode,
        )  # fmt: skip
        calibration.results.append({
            "index": problem.index,
            "type": problem.kind,
            "reference": problem.reference,
            "sampled": answers.sampled,
            "greedy": answers.greedy,
            "think_tokens": [len(t) for t in answers.think_tokens],
        })  # fmt: skip
        calibration.save()
    if not calibration.results:
        raise EdgeTTSError(f"no questions were calibrated for {model}")
    calibration.save()
    return calibration
