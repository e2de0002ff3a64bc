"""The embedding API: an :class:`Engine` that loads store entries once and answers questions.

Deadlines are wall-clock from the request's arrival (the moment ``solve`` / ``submit`` is
called): planning, waiting in the queue and decoding all count. Work that does not depend on the
request — tokenizers, sessions, one warm-up step — is :meth:`Engine.warm`'s, done before the
first request so that it is not charged to it.

Thread safety: every planned request goes through one decode worker (worker.py) that owns the
CPU, earliest deadline first, so one Engine can serve several threads, e.g. the callbacks of a
ROS 2 node or an HTTP server. Loading is guarded by a lock; a loaded model is read-only
afterwards (ONNX Runtime's ``run`` is thread-safe and each call keeps its own KV cache and
random streams), so :meth:`Engine.generate` may also be called directly from any thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import NamedTuple

import psutil
from tokenizers import Tokenizer

from . import evals, store
from .answer import Answer, Delta, Prediction, TokenCounts
from .errors import EdgeTTSError
from .planner.candidates import build as build_candidates
from .planner.candidates import constrained, default_kind, predicted_run_s, prompt_cost
from .planner.correction import Correction, corrected, ratios
from .planner.scheduler import Candidate, CandidateSet, Config, Plan, plan
from .profiling.device_profile import DeviceProfile, ModelProfile, load_for
from .profiling.device_profile import load as load_profile
from .profiling.latency_model import LatencyModel
from .profiling.load import LoadWatch
from .profiling.profiler import merge
from .profiling.threads import Choice, choose
from .reprofile import Reprofiler
from .runtime.generator import Generation, generate
from .runtime.onnx_model import OnnxCausalLM, default_threads
from .runtime.prompting import STEPS
from .runtime.sampling import SamplingParams
from .runtime.stream_text import StreamText
from .tts.answer_types import NUMBER, AnswerType, resolve
from .worker import DecodeWorker, Job

MIN_DEADLINE_S = 0.001  # what the guard gets when planning alone used up the target
MAX_LATENCY_S = 3600.0  # a longer "deadline" is a unit mistake (ms written as s), not a plan
WARM_QUESTION = "What is 2 plus 3?"  # what warm() plans and runs with: short, any model answers it
TokenCallback = Callable[[int, int], None]  # (sample index, token id), on the worker thread
StartCallback = Callable[[Config], None]  # the configuration a request runs, once it is planned


class Planned(NamedTuple):
    """What :meth:`Engine.plan` returns: the plan (``plan.chosen`` is the configuration
    :meth:`Engine.solve` would run) and every candidate it was chosen from. A tuple, so that
    ``chosen_plan, candidates = engine.plan(...)`` reads as well as ``engine.plan(...).plan``."""

    plan: Plan
    candidates: CandidateSet

    @property
    def chosen(self) -> Candidate | None:
        return self.plan.chosen


class Engine:
    def __init__(
        self, threads: int | None = None, profile: DeviceProfile | None = None, eval_name: str = "gsm8k",
        correct: bool = True, auto_reprofile: bool = False,
    ):  # fmt: skip
        """``profile``: the device profile :meth:`solve` plans with (default: this device's);
        ``eval_name``: whose calibration tables give the accuracies it maximises (a name, or
        the JSONL file it was calibrated on); ``correct``: scale the profile's predictions by
        what planned runs measure (planner/correction.py), saved next to a profile file;
        ``auto_reprofile``: when a model's correction drifts, measure it again in the
        background while no request runs, and plan with that (reprofile.py). Off by default:
        a re-profile holds the CPU in every gap between requests for a minute or so.
        ``threads``: intra-op threads; None picks them per request for the other load on the
        CPU where the profile measured thread counts under load (`profile --threads-sweep`,
        profiling/threads.py), else one per physical core."""
        self.threads = threads
        self.eval_name = evals.name_of(eval_name)
        self.correct = correct
        self.auto_reprofile = auto_reprofile
        self._reprofiler: Reprofiler | None = None
        self._correction: Correction | None = None
        self._profile = profile
        self._info = None
        self._models: dict[tuple[str, int], OnnxCausalLM] = {}  # (model, threads): a session
        self._tokenizers: dict[str, Tokenizer] = {}
        self._watch: LoadWatch | None = None
        self._lock = threading.Lock()
        self._worker: DecodeWorker | None = None

    def device_profile(self) -> DeviceProfile:
        with self._lock:
            if self._profile is None:
                self._profile = load_for(self._device().id)
            return self._profile

    def correction(self) -> Correction:
        """What planned runs measured against this profile: read from next to the profile file
        (``<device>.correction.yaml``) once, kept in memory for a profile that has no file."""
        profile = self.device_profile()
        with self._lock:
            if self._correction is None:
                path = (
                    profile.path.with_name(f"{profile.path.stem}.correction.yaml") if profile.path else None
                )
                self._correction = Correction.load(path) if path else Correction()
            return self._correction

    def threads_now(self) -> dict[str, Choice]:
        """Per profiled model, the thread count to decode with for the other load on the CPU now
        and the latency model measured for it (profiling/threads.py); models without a thread
        sweep get ``threads`` (or one per physical core) and their profile's latency."""
        models = self.device_profile().models
        swept = any(model.under_load for model in models.values())
        foreign = self._load_watch().foreign_cores() if swept else 0.0
        return {name: self._choose(model, foreign) for name, model in models.items()}

    def _choose(self, model: ModelProfile, foreign_cores: float) -> Choice:
        if not model.under_load:
            return Choice(self.threads or default_threads(), model.latency, None)
        # the thread count the profile's own latency was measured with
        quiet_threads = int(model.details.get("measured", {}).get("threads") or default_threads())
        return choose(model.under_load, model.latency, quiet_threads, foreign_cores, self.threads)

    def other_load_cores(self) -> float | None:
        """Other processes' CPU load over the last two seconds, in cores (None: not watched,
        since no profiled model has a thread sweep to pick threads by)."""
        return None if self._watch is None else self._watch.foreign_cores()

    def watch_load(self, settle_s: float = 0.5) -> None:
        """Start watching the other load on the CPU where some profiled model has a thread sweep
        (warm() does): waits ``settle_s`` so that the first reading covers a window rather than
        an instant. Without it the first request starts the watch and plans as if quiet."""
        if any(m.under_load for m in self.device_profile().models.values()) and self._watch is None:
            self._load_watch()
            time.sleep(settle_s)

    def _load_watch(self) -> LoadWatch:
        with self._lock:
            if self._watch is None:
                self._watch = LoadWatch().start()
            return self._watch

    def planning_profile(self, choices: dict[str, Choice] | None = None) -> DeviceProfile:
        """The profile with each model's latency the one for the threads it would run with now
        (``choices``, default :meth:`threads_now`), scaled by the run-time correction (unscaled
        with ``correct=False``)."""
        profile = self.device_profile()
        choices = self.threads_now() if choices is None else choices
        state = self.correction() if self.correct else None
        models = {}
        for name, model in profile.models.items():
            latency = choices[name].latency if name in choices else model.latency
            if state is not None:
                latency = corrected(latency, state.factors(name))
            models[name] = replace(model, latency=latency)
        return replace(profile, models=models)

    def _device(self):
        """This machine, detected once (a benign race: two threads may both detect it)."""
        if self._info is None:
            from .profiling.device import detect

            self._info = detect()
        return self._info

    def plan(
        self,
        question: str,
        latency: float,
        energy: float | None = None,
        best_effort: bool = False,
        models: Sequence[str] | None = None,
        answer_type: AnswerType = NUMBER,
        modes: Sequence[str] | None = None,
        choices: dict[str, Choice] | None = None,
    ) -> Planned:
        """The configuration :meth:`solve` would run, and the candidates it was chosen from
        (``models``: plan over these profiled entries only; ``answer_type``: the answer's kind,
        whose accuracy table the plan maximises and whose length it predicts; ``modes``: only
        configurations that answer directly, reason in steps or write a program, as named;
        ``choices``: the thread counts to predict with, default :meth:`threads_now`)."""
        if latency <= 0:
            raise EdgeTTSError(f"latency {latency} s is not positive")
        candidates, notes = build_candidates(
            self.planning_profile(choices), question, self.eval_name, answer_tokens=answer_type.answer_tokens,
            models=models, answer_type=answer_type, modes=modes,
        )  # fmt: skip
        if not len(candidates):
            raise EdgeTTSError("nothing to plan with: " + "; ".join(notes or ["the profile has no models"]))
        memory = self._memory_cap()
        chosen = plan(candidates, latency, energy_j=energy, memory_bytes=memory, best_effort=best_effort)
        return Planned(chosen, candidates)

    def answer_type_of(
        self, question: str, answer_type: str | None = None, choices: Sequence[str] = (),
        schema: dict | str | None = None,
    ) -> AnswerType:  # fmt: skip
        """The answer type :meth:`submit` reads for ``question``: the caller's, else inferred
        (tts/answer_types.py), with this eval set's default where no rule decides."""
        default = default_kind(list(self.device_profile().models), self.eval_name)
        return resolve(question, answer_type, tuple(choices), default=default, schema=schema)

    def warm(self, models: Sequence[str] | None = None) -> float:
        """Do before the first request what does not depend on it: detect the device, read the
        profile and calibration tables, load every tokenizer planning counts with, and load and
        run one short generation on ``models`` (default: every model the planner may choose
        that is in the store). Returns the seconds it took (what `edgetts run` reports as
        start-up, not counted against the deadline)."""
        start = time.perf_counter()
        self._meter()
        self.watch_load()
        candidates = build_candidates(self.device_profile(), WARM_QUESTION, self.eval_name)[0]
        if models is None:
            models = sorted({c.config.model for c in candidates.candidates if store.exists(c.config.model)})
        for name in models:
            # Prefill plus one decode step: onnxruntime allocates its arenas and picks kernels on
            # the first runs of each shape family, which a first request would otherwise pay (and
            # the answer grammar's tokenizer is built once per model, ~0.3 s for Qwen's). A
            # session per thread count the model may be run with under some load.
            for count in self._thread_counts(name):
                self.generate(
                    WARM_QUESTION, model=name, budget=0, samples=1, answer_tokens=2, constrain=True,
                    threads=count,
                )  # fmt: skip
        self._decode_worker()
        return time.perf_counter() - start

    def _thread_counts(self, name: str) -> list[int]:
        """The thread counts ``name`` runs with at some measured load level (one session each)."""
        model = self.device_profile().models.get(name)
        if model is None:
            return [self.threads or default_threads()]
        levels = {row.busy_cores for row in model.under_load} or {0}
        return sorted({self._choose(model, level).threads for level in levels})

    def solve(
        self,
        question: str,
        latency: float,
        energy: float | None = None,
        best_effort: bool = False,
        seed: int = 0,
        on_token: TokenCallback | None = None,
        models: Sequence[str] | None = None,
        answer_type: str | None = None,
        choices: Sequence[str] = (),
        schema: dict | str | None = None,
        modes: Sequence[str] | None = None,
    ) -> Answer:
        """Answer ``question`` as accurately as the device can within ``latency`` seconds of this
        call: plan (model, budget, N) from the profile and calibration, run it under the
        deadline guard, and report the prediction next to what it cost. Goes through the same
        deadline queue as :meth:`submit` (and waits for its turn there)."""
        return self.submit(
            question, latency, energy=energy, best_effort=best_effort, seed=seed, on_token=on_token,
            models=models, answer_type=answer_type, choices=choices, schema=schema, modes=modes,
        ).result()  # fmt: skip

    def stream(self, question: str, latency: float, **options) -> Iterator[Delta | Answer]:
        """:meth:`submit`, read as it decodes: a :class:`Delta` for each piece of text a sample
        generates (its reasoning, then its answer, as the tokenizer turns tokens into whole
        characters; the forcing text the engine feeds at a cut is not generated, so not
        streamed), then the :class:`Answer` last, as llama-cpp-python's and onnxruntime-genai's
        streams read. ``options``: those of :meth:`submit` (not ``on_token``/``on_start``, which
        this uses). Refusals raise at once, as from :meth:`submit`; leaving the loop early (or
        closing the iterator) cancels the request within one decode step."""
        events: queue.SimpleQueue = queue.SimpleQueue()
        future = self.submit(
            question, latency, on_token=lambda s, t: events.put((s, t)),
            on_start=lambda config: events.put(config), **options,
        )  # fmt: skip
        future.add_done_callback(lambda _future: events.put(None))
        text: StreamText | None = None
        try:
            while (event := events.get()) is not None:
                if isinstance(event, Config):  # on_start: whose tokenizer reads the tokens
                    text = StreamText(self.tokenizer(event.model))
                elif text is not None and (piece := text.delta(*event)):
                    yield Delta(event[0], piece)
            yield future.result()
        finally:
            future.cancel()  # the caller stopped reading: stop decoding (a no-op once done)

    def submit(
        self,
        question: str,
        latency: float,
        *,
        energy: float | None = None,
        best_effort: bool = False,
        seed: int = 0,
        on_token: TokenCallback | None = None,
        models: Sequence[str] | None = None,
        on_start: StartCallback | None = None,
        arrival: float | None = None,
        answer_type: str | None = None,
        choices: Sequence[str] = (),
        schema: dict | str | None = None,
        modes: Sequence[str] | None = None,
    ) -> Future:
        """Queue ``question`` with a deadline ``latency`` seconds from now; a Future of its
        :class:`Answer`. Admission happens here, at once: if nothing fits in the time left after
        the work queued ahead, this raises :class:`DeadlineUnreachableError` (with
        ``best_effort``, the fastest configuration runs instead). ``future.cancel()`` stops the
        request within one decode step. ``on_token(sample, token)`` is called on the worker
        thread for every decoded token (streaming, progress feedback), after ``on_start(config)``
        says which configuration the request runs (a streaming server needs its tokenizer).
        ``arrival``: the ``time.perf_counter()`` at which the request arrived, where an adapter
        took it before reading the request (default: now). ``answer_type`` (number, yesno,
        choice, text, json; None or "auto": inferred from the question, see tts/answer_types.py),
        ``choices`` (a choice's options, else listed in the question) and ``schema`` (a json
        answer's JSON Schema) say what answer to read; ``modes`` (direct, steps, program) limits
        how it may be reasoned."""
        arrival = time.perf_counter() if arrival is None else arrival
        _check_question(question)
        _check_latency(latency)
        kind = self.answer_type_of(question, answer_type, choices, schema)

        def admit(left: float | None) -> tuple[float, float]:
            chosen = self.plan(question, left or latency, energy, best_effort, models, kind, modes)[0]
            return chosen.chosen.latency_s, chosen.fastest_s

        def run(job: Job) -> Answer:
            return self._run_planned(
                job, question, energy, best_effort, seed, on_token, models, on_start, kind, modes
            )

        return self._decode_worker().submit(arrival, arrival + latency, admit, run)

    def submit_generate(
        self,
        prompt: str,
        model: str,
        *,
        budget: int = 128,
        samples: int = 1,
        seed: int = 0,
        answer_tokens: int = 16,
        sampling: SamplingParams | None = None,
        anchor: bool = True,
        stop: Sequence[str] = (),
        on_token: TokenCallback | None = None,
        arrival: float | None = None,
        answer_type: AnswerType = NUMBER,
        mode: str = STEPS,
    ) -> Future:
        """Queue one :meth:`generate` call as given (no plan, no deadline): it runs on the decode
        worker after every request that has a deadline and is waiting, and its predicted time
        (from the profile, where the model is profiled) counts as work ahead of later requests."""
        arrival = time.perf_counter() if arrival is None else arrival
        _check_question(prompt)
        self.load(model)  # an unknown model fails here, at once, not in the queue

        def admit(_left: float | None) -> tuple[float, float]:
            profiled = self.planning_profile().models.get(model)
            if profiled is None:
                return 0.0, 0.0  # nothing to predict with: it counts as no work ahead of others
            predicted = predicted_run_s(model, profiled, prompt, budget, samples, answer_tokens, mode)
            return predicted, predicted

        def run(job: Job) -> Answer:
            answer = self.generate(
                prompt, model=model, budget=budget, samples=samples, seed=seed, answer_tokens=answer_tokens,
                sampling=sampling, on_token=on_token, anchor=anchor, stop=stop, cancel=job.cancel,
                answer_type=answer_type, mode=mode,
            )  # fmt: skip
            answer.queued_ms = job.queued_ms
            return answer

        return self._decode_worker().submit(arrival, None, admit, run)

    def close(self) -> None:
        """Stop the decode worker: queued requests fail with EngineClosedError, the running one
        is cancelled. The loaded models stay (``generate`` still works)."""
        with self._lock:
            worker, self._worker = self._worker, None
            reprofiler, self._reprofiler = self._reprofiler, None
        if worker is not None:
            worker.close(timeout=10)
        if reprofiler is not None:  # it stops at its next pause: the worker is closed
            reprofiler.join(timeout=10)
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if self._correction is not None:
            self._correction.save(force=True)

    def pending(self) -> int:
        """Requests waiting or running in the decode queue."""
        return 0 if self._worker is None else self._worker.pending()

    def _decode_worker(self) -> DecodeWorker:
        with self._lock:
            if self._worker is None:
                self._worker = DecodeWorker()
            return self._worker

    def _run_planned(
        self,
        job: Job,
        question: str,
        energy: float | None,
        best_effort: bool,
        seed: int,
        on_token: TokenCallback | None,
        models: Sequence[str] | None,
        on_start: StartCallback | None,
        kind: AnswerType,
        modes: Sequence[str] | None = None,
    ) -> Answer:
        """On the worker: plan again for the time actually left, then run under the guard."""
        assert job.deadline is not None
        left = job.deadline - time.perf_counter()
        if job.allowance_s is not None:  # what the requests queued behind it can spare
            left = min(left, job.allowance_s - (time.perf_counter() - (job.started or 0.0)))
        left = max(left, MIN_DEADLINE_S)
        # An admitted request is answered: if the queue ran slower than predicted and nothing
        # fits any more, the fastest configuration runs and the guard keeps the deadline (a
        # refusal after the wait would reach the caller late, with nothing).
        choices = self.threads_now()  # one look at the other load: plan and run with the same
        plan_now = self.plan(question, left, energy, True, models, kind, modes, choices)[0]
        chosen, config = plan_now.chosen, plan_now.chosen.config
        job.predicted_s = chosen.latency_s  # what later arrivals count as work ahead
        choice = choices[config.model]
        self.load(config.model, choice.threads)  # a session warm() did not load is charged here
        if on_start is not None:
            on_start(config)
        meter = self._meter()
        meter.begin()
        profiled = self.planning_profile(choices).models[config.model]
        context = prompt_cost(config.model, question, kind, config.mode).thinking
        # The guard gets what is left of the request's time after planning (and any load).
        answer = self.generate(
            question,
            model=config.model,
            budget=config.budget,
            samples=config.samples,
            deadline=max(job.deadline - time.perf_counter(), MIN_DEADLINE_S),
            seed=seed,
            on_token=on_token,
            cancel=job.cancel,
            answer_type=kind,
            answer_tokens=kind.answer_tokens,
            expected_step_s=float(profiled.latency.step_s(config.samples, context)),
            mode=config.mode,
            threads=choice.threads,
        )
        reading = meter.end()
        answer.latency_ms = 1000 * (time.perf_counter() - job.arrival)  # from arrival, as the deadline
        answer.deadline_ms = 1000 * (job.deadline - job.arrival)
        answer.queued_ms = job.queued_ms
        answer.planned = Prediction(
            predicted_ms=round(1000 * chosen.latency_s, 1),
            predicted_accuracy=round(chosen.accuracy, 4),
            predicted_energy_j=None if chosen.energy_j is None else round(chosen.energy_j, 3),
            energy_j=None if reading.joules is None else round(reading.joules, 3),
            energy_source=reading.source,
            replanned_fastest=plan_now.best_effort and not best_effort,
            # its predictions are a loaded machine's
            profile_busy=self.device_profile().busy_load() is not None,
        )
        if choice.busy_cores is not None:  # planned with the thread sweep's row for the load seen
            answer.planned.under_load = {
                "busy_cores": choice.busy_cores, "other_load_cores": round(choice.other_load_cores, 2),
            }  # fmt: skip
        if self.correct:
            self._observe(config.model, question, kind, answer, choice.latency)
        return answer

    def _observe(
        self, model: str, question: str, kind: AnswerType, answer: Answer, latency: LatencyModel
    ) -> None:
        """Feed what this run measured against ``latency`` (what it was planned with, before the
        correction) into the correction, and say in ``answer.planned`` what it made of it
        (the model's factors, drift, a background re-profile). The correction is then
        what neither the profile nor its thread sweep's row for the load seen predicted."""
        force = prompt_cost(model, question, kind, answer.config.mode).force
        batch = len(answer.sample_forced_by)
        steps = [  # model steps each sample took: its tokens, and the forcing text if it was fed
            think + said + ((force if batch > 1 else 1) if forced != "none" else 0)
            for think, said, forced in zip(
                answer.tokens.think, answer.tokens.answer, answer.sample_forced_by, strict=True
            )
        ]
        prompt = answer.tokens.prompt
        state = self.correction()
        state.observe(
            model, *ratios(latency, prompt, answer.prefill_ms / 1000, answer.decode_ms / 1000, steps)
        )
        state.save()
        drift = state.drifting(model, latency)
        planned = answer.planned
        planned.latency_correction, planned.drift = state.factors(model).to_dict(), drift
        if drift and self.auto_reprofile and self.device_profile().conditions.get("source") == "measured":
            planned.reprofile = self._background_reprofiler().request(model)

    def _background_reprofiler(self) -> Reprofiler:
        worker = self._decode_worker()
        with self._lock:
            if self._reprofiler is None or self._reprofiler.worker is not worker:
                self._reprofiler = Reprofiler(worker, self._loaded, self._take_profile, self.threads)
            return self._reprofiler

    def _loaded(self, name: str) -> OnnxCausalLM | None:
        """The session a re-profile measures: the one with the profile's own thread count."""
        with self._lock:
            return self._models.get((name, self.threads or default_threads()))

    def _take_profile(self, name: str, measured: ModelProfile) -> None:
        """Plan with a model's fresh measurement (reprofile.py): it replaces the model's section
        in memory and in the profile file (other models in the file are kept), and the model's
        correction starts afresh, since the profile now holds what it corrected for."""
        with self._lock:
            profile = self._profile
            assert profile is not None
            old = profile.models[name]
            # the weights' memory did not change; power is kept where this sweep had no meter
            # and the thread sweep's rows still say how the model shares the CPU with other load
            measured = replace(
                measured, resident_bytes=old.resident_bytes, power=measured.power or old.power,
                under_load=measured.under_load or old.under_load,
            )  # fmt: skip
            self._profile = replace(profile, models={**profile.models, name: measured})
        if profile.path is not None:
            on_disk = load_profile(profile.path) if profile.path.exists() else profile
            conds = {**on_disk.conditions, "date": measured.details["measured"]["date"]}
            merge(on_disk.device, on_disk, {name: measured}, conds).save(profile.path)
        state = self.correction()
        state.forget(name)
        state.save(force=True)

    def _memory_cap(self) -> int | None:
        """What a configuration may use: this machine's free memory (plus what edgetts already
        holds), or the spec's memory when planning for another device's profile."""
        profile = self.device_profile()
        if profile.device_id == self._device().id:
            return psutil.virtual_memory().available + psutil.Process().memory_info().rss
        spec_id = profile.device.get("spec")
        if spec_id:
            from .devices import load_spec

            return load_spec(str(spec_id)).memory_bytes
        return None

    def _meter(self):
        from .profiling.energy import meter_for

        return meter_for(self._device())

    def tokenizer(self, model: str) -> Tokenizer:
        """``model``'s tokenizer, loaded once (without a session: a streaming caller needs only
        this, and the session that runs is the one for the threads the request chose)."""
        with self._lock:
            if model not in self._tokenizers:
                path = store.get(model).path / "tokenizer.json"
                self._tokenizers[model] = Tokenizer.from_file(str(path))
            return self._tokenizers[model]

    def load(self, model: str, threads: int | None = None) -> tuple[OnnxCausalLM, Tokenizer]:
        """``model``'s session with ``threads`` intra-op threads (default: the engine's, else
        one per physical core), loaded once, and its tokenizer."""
        key = (model, threads or self.threads or default_threads())
        with self._lock:
            if key not in self._models:
                entry = store.get(model)
                self._models[key] = OnnxCausalLM(entry.path, entry.manifest, threads=key[1])
        return self._models[key], self.tokenizer(model)

    def generate(
        self,
        prompt: str,
        model: str,
        budget: int = 128,
        samples: int = 1,
        deadline: float | None = None,
        seed: int = 0,
        answer_tokens: int = 16,
        sampling: SamplingParams | None = None,
        on_token=None,
        anchor: bool = True,
        stop: Sequence[str] = (),
        cancel: threading.Event | None = None,
        answer_type: AnswerType = NUMBER,
        constrain: bool | None = None,
        expected_step_s: float | None = None,
        mode: str = STEPS,
        threads: int | None = None,
    ) -> Answer:
        """One generation with the configuration given (no plan, no queue): see
        runtime.generator.generate. ``constrain`` (None: as planner/candidates.constrained says
        for this model on this engine's eval set) decodes the answer under its type's grammar;
        ``mode``: ``steps`` (prose reasoning) or ``program`` (program-aided, tts/program.py);
        ``threads``: the session's intra-op threads (see :meth:`load`)."""
        lm, tokenizer = self.load(model, threads)
        if constrain is None:
            constrain = constrained(model, self.eval_name, answer_type.kind, mode)
        result: Generation = generate(
            lm, tokenizer, prompt, budget=budget, samples=samples, answer_tokens=answer_tokens,
            deadline=deadline, seed=seed, sampling=sampling, on_token=on_token, anchor=anchor,
            stop=stop, cancel=cancel, answer_type=answer_type, constrain=constrain,
            expected_step_s=expected_step_s, mode=mode,
        )  # fmt: skip
        return Answer(
            text=result.answer,
            config=Config(model, lm.manifest.quant_type, budget, samples, mode),
            threads=lm.threads,
            latency_ms=result.latency_ms,
            prefill_ms=result.prefill_ms,
            decode_ms=result.decode_ms,
            tokens=TokenCounts(
                prompt=result.prompt_tokens,
                think=[len(s.think) for s in result.samples],
                answer=[len(s.answer) for s in result.samples],
            ),
            forced_by=result.forced_by,
            votes=result.votes,
            stopped_early=result.stopped_early,
            samples=[s.text for s in result.samples],
            sample_forced_by=[s.forced_by for s in result.samples],
            answer_type=answer_type,
        )


def _check_question(question: object) -> None:
    if not isinstance(question, str) or not question.strip():
        raise EdgeTTSError("the question is empty; pass the text to answer")


def _check_latency(latency: object) -> None:
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency != latency:
        raise EdgeTTSError(f"latency {latency!r} is not a number of seconds")
    if latency <= 0:
        raise EdgeTTSError(f"latency {latency} s is not positive")
    if latency > MAX_LATENCY_S:
        raise EdgeTTSError(
            f"latency {latency:g} s is over an hour; was it meant in milliseconds? "
            f"(at most {MAX_LATENCY_S:g} s)"
        )
