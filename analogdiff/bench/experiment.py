"""One experiment: model + card (+ overrides) + drift time + programming seeds + task → accuracy and its cost.

    spec = Experiment(model="shakespeare-mdlm", card="pcm-ibm", drift_time_s=86400.0, seeds=(0, 1, 2),
                      score=Score(eval_chars=4096), generate=Generate(steps=64, n_samples=4))
    out = run(spec)       # {"per_seed": [...], "metrics": {key: summary}, "cost": {...}, ...}

This is the only place where a model is programmed, drifted, measured and priced: ``analogdiff eval`` and
``generate``, every suite section (``runs.py``) and every tuner trial (``tune.py``) build an ``Experiment``
and call :func:`run` or :func:`run_seed`.

For each programming seed (one seed = one chip programmed once):

1. program: ``analogize`` the model on the card with that seed, converter ranges calibrated on windows of the
   validation plays (never the test plays the accuracy is measured on), and move it to ``drift_time_s``.
   A GPU card runs the digital model (nothing to program).
2. measure, with each task recording its own counters (a :class:`~analogdiff.trace.Trace` of every model
   call: sequences, positions fed, heads evaluated, attention pairs, cache use) and the analog layers'
   activation statistics, reset before each task:

   - :class:`Score`: bits/char (AR exact; MDLM the NELBO bound) and token accuracy on the test plays;
   - :class:`Generate`: passages from the sampler, judged by the digital AR twin (generative perplexity,
     character entropy);
   - :class:`Complete`: conditional completion of held-out prompts (:mod:`analogdiff.lm.completion`):
     character accuracy against the true continuation, the digital AR judge's bits/char of the written text,
     the true continuation's log-loss (AR exact; MDLM left-to-right any-order NLL or NELBO), the fraction of
     injected errors the sampler revised; per-prompt values are kept (``per_prompt``) for the bootstrap.
3. price: ``estimate(shape, card, decode=trace, stats=stats)`` — the energy and latency of exactly that
   run, per scored character (``Score``) or per generated character (``Generate``).

Statistics over seeds follow :mod:`analogdiff.stats`: mean ± sample std and a 95% t-interval. Randomness:
the programming seed drives the chip (programming noise, read-noise streams); ``eval_seed`` drives the test
windows' masks and the sampler, the same for every programming seed so that seeds are paired.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from analogdiff import checks
from analogdiff.checks import ConfigError

# --------------------------------------------------------------------------- specification


@dataclass(frozen=True)
class Score:
    """Score the test plays: bits/char and token accuracy (MDLM: masked accuracy at each of ``mask_rates``,
    the headline one at 0.5; AR: next-character accuracy), on the first ``eval_chars`` characters (None: all).

    ``text``: a UTF-8 file scored instead, every token of it (its first ``eval_chars`` characters if given):
    ``bits_per_token`` and ``bits_per_byte`` (AR exact; diffusion the NELBO bound), ``token_accuracy``
    (diffusion: ``masked_acc@r``; AR: ``next_token_accuracy``), through the model's own tokenizer."""

    eval_chars: int | None = checks.BUDGET_DEFAULTS["eval_chars"]
    t_samples: int = checks.BUDGET_DEFAULTS["t_samples"]
    batch_size: int = checks.BUDGET_DEFAULTS["batch_size"]
    eval_seed: int = 0
    split: str = "test"
    mask_rates: tuple = (0.15, 0.5, 0.9)
    text: str | None = None

    def __post_init__(self):
        lo, hi = checks.BUDGET_BOUNDS["eval_chars"]
        if self.eval_chars is not None:
            checks.integer("eval_chars", self.eval_chars, lo, hi)
        if self.text is not None:
            checks.text("text", self.text, checks.MAX_PATH_CHARS)
        checks.integer("t_samples", self.t_samples, *checks.BUDGET_BOUNDS["t_samples"])
        checks.integer("batch_size", self.batch_size, *checks.BUDGET_BOUNDS["batch_size"])
        checks.seed("eval_seed", self.eval_seed)
        if self.split not in ("validation", "test"):
            checks.fail("split", f"must be 'validation' or 'test', got {self.split!r}")
        for r in self.mask_rates:
            checks.number("mask_rates", r, 0.0, 1.0, lo_open=True)


@dataclass(frozen=True)
class Generate:
    """Generate ``n_samples`` passages of ``seq_len`` characters (default: the context) and judge them with
    the digital AR model ``judge`` (None: no judging). MDLM: ``steps`` denoising steps with ``sampler``,
    semi-AR blocks of ``block_len`` (with a prefix KV cache if ``kv_cache``); AR: one step per character with
    its KV cache. ``kv_cache``: MDLM — the prefix KV cache of block diffusion (None: off); AR — None uses the
    cache whenever the passage fits the context."""

    steps: int = 64
    seq_len: int | None = None
    n_samples: int = checks.BUDGET_DEFAULTS["gen_samples"]
    sampler: str = "ancestral"
    block_len: int | None = None
    kv_cache: bool | None = None
    temperature: float = 1.0
    top_k: int | None = None
    prompt: str | None = None
    eval_seed: int = 0
    judge: str | None = "shakespeare-ar"

    def __post_init__(self):
        checks.integer("steps", self.steps, 1, checks.BUDGET_BOUNDS["gen_len"][1])
        if self.seq_len is not None:
            checks.integer("seq_len", self.seq_len, *checks.BUDGET_BOUNDS["gen_len"])
        checks.integer("n_samples", self.n_samples, *checks.BUDGET_BOUNDS["gen_samples"])
        if self.block_len is not None:
            checks.integer("block_len", self.block_len, *checks.BUDGET_BOUNDS["gen_len"])
        checks.number("temperature", self.temperature, 0.0, 100.0)
        if self.top_k is not None:
            checks.integer("top_k", self.top_k, 1, 1_000_000)
        checks.seed("eval_seed", self.eval_seed)


@dataclass(frozen=True)
class Complete:
    """Continue ``n_prompts`` held-out prompts of ``prompt_len`` characters by ``n_new`` characters (see
    :mod:`analogdiff.lm.completion`). MDLM: ``steps`` denoising steps (None: ``n_new``) with ``sampler``
    (``eta``: ReMDM's re-masking cap); ``inject_pct``: corrupt that percentage of the ``n_new`` characters
    midway; ``loss``: the MDLM's log-loss of the true continuation, "l2r" (exact left-to-right any-order) or
    "nelbo" (``t_samples`` times), None to skip (AR: always exact unless None). ``judge``: the digital AR
    model that scores the written text (None: no judging)."""

    n_new: int = 32
    n_prompts: int = 32
    prompt_len: int = 32
    steps: int | None = None
    sampler: str = "ancestral"
    eta: float = 0.0
    temperature: float = 1.0
    inject_pct: float = 0.0
    loss: str | None = "l2r"
    t_samples: int = 4
    batch_size: int = 64
    eval_seed: int = 0
    split: str = "test"
    judge: str | None = "shakespeare-ar"

    def __post_init__(self):
        from analogdiff.lm.completion import LOSSES
        from analogdiff.lm.sampling import SAMPLERS

        L = checks.BUDGET_BOUNDS["gen_len"][1]
        checks.integer("n_new", self.n_new, 1, L)
        checks.integer("n_prompts", self.n_prompts, 1, 100_000)
        checks.integer("prompt_len", self.prompt_len, 1, L)
        if self.steps is not None:
            checks.integer("steps", self.steps, 1, L)
        if self.sampler not in SAMPLERS:
            checks.fail("sampler", f"must be one of {', '.join(SAMPLERS)}, got {checks.short(self.sampler)}")
        checks.number("eta", self.eta, 0.0, 1.0)
        checks.number("temperature", self.temperature, 0.0, 100.0)
        checks.number("inject_pct", self.inject_pct, 0.0, 100.0)
        loss = None if checks.is_none(self.loss) else self.loss
        if loss is not None and loss not in LOSSES:
            checks.fail("loss", f"must be one of {', '.join(LOSSES)} or none, got {checks.short(self.loss)}")
        object.__setattr__(self, "loss", loss)
        checks.integer("t_samples", self.t_samples, *checks.BUDGET_BOUNDS["t_samples"])
        checks.integer("batch_size", self.batch_size, *checks.BUDGET_BOUNDS["batch_size"])
        checks.seed("eval_seed", self.eval_seed)
        if self.split not in ("validation", "test"):
            checks.fail("split", f"must be 'validation' or 'test', got {checks.short(self.split)}")


@dataclass(frozen=True)
class Experiment:
    """A model on a card at a drift time, over programming seeds, doing ``score`` and/or ``generate``.

    model: a shipped model name or a checkpoint path. card: a card name or path. overrides: dotted card keys
    (none-words switch a component off). seeds: programming seeds (a noiseless card ignores them).
    """

    model: str
    card: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    drift_time_s: float = 0.0
    seeds: tuple = (0,)
    score: Score | None = None
    generate: Generate | None = None
    complete: Complete | None = None

    def __post_init__(self):
        object.__setattr__(self, "drift_time_s", checks.drift_time_s("drift_time_s", self.drift_time_s))
        object.__setattr__(self, "seeds", tuple(checks.seeds("seeds", list(self.seeds))))
        object.__setattr__(self, "overrides", checks.overrides("overrides", self.overrides))
        if self.score is None and self.generate is None and self.complete is None:
            checks.fail("experiment", "give a task: score=Score(...), generate=Generate(...) and/or "
                                      "complete=Complete(...)")

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- models and programmed chips

_MODELS: dict[str, Any] = {}
_PROGRAMMED: OrderedDict = OrderedDict()
_PROGRAMMED_MAX = 3


def model(ref: str):
    """A loaded model, kept for the life of the process (a worker loads each model once)."""
    from analogdiff.lm import load_model

    if ref not in _MODELS:
        _MODELS[ref] = load_model(ref)
    return _MODELS[ref]


def hardware(card, overrides: Mapping[str, Any] | None = None):
    from analogdiff.config import load_hardware

    return load_hardware(card, overrides=dict(overrides or {}))


def calibration_ids(lm, n_windows: int = 4):
    """Token ids (n_windows, context_len) from the validation plays for converter-range calibration (never
    the test plays the accuracy is measured on)."""
    from analogdiff.lm import corpus

    ids = corpus.split_ids("validation", lm.vocab)
    return corpus.tiled_windows(ids, lm.shape.context_len)[:n_windows]


def program(model_ref: str, hw, seed: int, drift_time_s: float):
    """A fresh analog copy of ``model_ref`` programmed on ``hw`` with ``seed``, at ``drift_time_s``.

    The programmed (t = 0) and drifted models are cached (a few, most recent first) so that the runs of one
    worker that share a chip program it once; ``set_drift_time`` resets each layer's read-noise stream, so a
    copy of a cached model runs exactly as a freshly programmed one.
    """
    from analogdiff.crossbar.layers import analogize, set_drift_time

    key = (model_ref, repr(hw), seed)
    if key not in _PROGRAMMED:
        lm = model(model_ref)
        _PROGRAMMED[key] = analogize(lm, hw, seed=seed, calibration=calibration_ids(lm))
    _PROGRAMMED.move_to_end(key)
    dkey = key + (drift_time_s,)
    if dkey not in _PROGRAMMED:
        drifted = copy.deepcopy(_PROGRAMMED[key])
        set_drift_time(drifted, drift_time_s)
        _PROGRAMMED[dkey] = drifted
    _PROGRAMMED.move_to_end(dkey)
    base = _PROGRAMMED[dkey]
    while len(_PROGRAMMED) > _PROGRAMMED_MAX:
        _PROGRAMMED.popitem(last=False)
    return copy.deepcopy(base)


def stochastic(hw) -> bool:
    """Whether a programming seed can change a run on this card: any noise, stuck devices, or drift (every
    drift model draws its exponents per device)."""
    d = hw.device
    if hw.kind != "analog" or d is None:
        return False
    noisy = (d.prog_noise is not None or d.read_noise is not None or d.stuck_on_fraction > 0
             or d.stuck_off_fraction > 0 or hw.drift is not None)
    return noisy or (hw.adc is not None and hw.adc.noise_lsb > 0)


# --------------------------------------------------------------------------- the tasks


def text_ids(lm, path: str, max_chars: int | None = None):
    """Token ids (n,) of the text file ``path`` (its first ``max_chars`` characters) in ``lm``'s vocabulary,
    and the UTF-8 bytes each covers (n,); a file that cannot be scored is one line naming it."""
    from analogdiff.lm.tokenizer import encode_with_bytes

    text = checks.text_file("text file", path)
    if max_chars is not None:
        text = text[:max_chars]
    where = f"text file {checks.shown_path(path)}"
    try:
        ids, n_bytes = encode_with_bytes(lm.vocab, text)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    mask = lm.mask_id if lm.kind == "mdlm" else None
    if mask is not None and bool((ids == mask).any()):
        at = int((ids == mask).nonzero()[0, 0])
        raise ConfigError(f"{where}: token {at} is the model's mask token (id {mask}), which it never predicts; "
                          f"remove it from the text")
    return ids, n_bytes


def _score_text(runner, lm, task: Score, trace) -> dict:
    import torch

    from analogdiff.lm.evaluate import masked_token_accuracy, next_token_accuracy, token_nats

    ids, n_bytes = text_ids(lm, task.text, task.eval_chars)
    nats = token_nats(runner, ids, task.t_samples, task.eval_seed, task.batch_size, trace=trace, tail=True)
    scored = ~torch.isnan(nats)
    bits = float(nats[scored].sum()) / math.log(2.0)
    out = {"bits_per_token": bits / int(scored.sum()), "bits_per_byte": bits / int(n_bytes[scored].sum())}
    if lm.kind == "mdlm":
        for i, rate in enumerate(task.mask_rates):
            out[f"masked_acc@{rate:g}"] = masked_token_accuracy(runner, ids, rate, task.eval_seed + 1 + i,
                                                                task.batch_size, trace=trace, tail=True)
        out["token_accuracy"] = out.get("masked_acc@0.5", out[f"masked_acc@{task.mask_rates[0]:g}"])
    else:
        out["next_token_accuracy"] = next_token_accuracy(runner, ids, task.batch_size, trace=trace, tail=True)
        out["token_accuracy"] = out["next_token_accuracy"]
    return out


def _score(runner, lm, task: Score, trace) -> dict:
    from analogdiff.lm.evaluate import bits_per_char, masked_accuracy, next_char_accuracy

    if task.text is not None:
        return _score_text(runner, lm, task, trace)
    n = task.eval_chars
    out = {"bits_per_char": bits_per_char(runner, task.split, n, task.t_samples, task.eval_seed,
                                          task.batch_size, trace=trace)}
    if lm.kind == "mdlm":
        for i, rate in enumerate(task.mask_rates):
            out[f"masked_acc@{rate:g}"] = masked_accuracy(runner, task.split, rate, n, task.eval_seed + 1 + i,
                                                          task.batch_size, trace=trace)
        out["token_accuracy"] = out.get("masked_acc@0.5", next(iter(out.values())))
    else:
        out["next_char_accuracy"] = next_char_accuracy(runner, task.split, n, task.batch_size, trace=trace)
        out["token_accuracy"] = out["next_char_accuracy"]
    return out


def _generate(runner, lm, task: Generate, on_step: Callable | None) -> tuple[dict, Any, list[str]]:
    from analogdiff.lm.evaluate import char_entropy, judge_perplexity
    from analogdiff.lm.sampling import generate_ids

    seq_len = task.seq_len or lm.shape.context_len
    ids, info = generate_ids(runner, n_samples=task.n_samples, steps=task.steps, seed=task.eval_seed,
                             seq_len=seq_len, sampler=task.sampler, block_len=task.block_len,
                             kv_cache=task.kv_cache, temperature=task.temperature, top_k=task.top_k,
                             prompt=task.prompt, on_step=on_step)
    out = {"nfe": int(info["nfe"]), "entropy": char_entropy(ids, lm.vocab.size)}
    if task.judge is not None:
        out["gen_ppl"] = judge_perplexity(model(task.judge), ids)
    return out, info["trace"], [lm.vocab.decode(row) for row in ids]


def _complete(runner, lm, task: Complete, seed: int | None) -> tuple[dict, dict, Any]:
    """(metric means, per-prompt lists, trace) of the completion task on ``runner``."""
    import math

    from analogdiff.lm.completion import complete, continuation_nll, judge_nll, prompt_windows
    from analogdiff.trace import Trace

    trace = Trace()
    windows = prompt_windows(lm.vocab, task.split, task.n_prompts, task.prompt_len, task.n_new)  # (B, P+N)
    sample_seed = task.eval_seed * 1_000_003 + (0 if seed is None else seed)
    ids, info = complete(runner, windows, task.n_new, task.steps, task.sampler, task.eta, task.temperature,
                         sample_seed, task.inject_pct, trace)
    bits = 1.0 / (task.n_new * math.log(2.0))  # nats per continuation → bits per character
    per = {"char_accuracy": (ids == windows[:, -task.n_new:]).double().mean(dim=1).tolist()}
    if task.judge is not None:
        per["judge_bits_per_char"] = (judge_nll(model(task.judge), windows, ids, task.batch_size) * bits).tolist()
    if task.inject_pct > 0:
        per["repaired"] = info["repaired"].tolist()
        per["revised_clean"] = info["revised_clean"].tolist()
    if task.loss is not None:
        nll = continuation_nll(runner, windows, task.n_new, task.loss, task.t_samples, task.eval_seed,
                               task.batch_size, trace)
        per["loss_bits_per_char"] = (nll * bits).tolist()
    means = {k: math.fsum(v) / len(v) for k, v in per.items() if not any(math.isnan(x) for x in v)}
    means["nfe"] = float(trace.denoiser_calls)
    return means, per, trace


def _price(lm, hw, trace, stats) -> dict:
    """The cost of the run ``trace`` recorded, with its activation statistics (analog cards)."""
    from analogdiff.energy import estimate

    report = estimate(lm.shape, hw, decode=trace, stats=stats)
    return report.to_dict()


STATS_KEYS = ("mean_abs_x_norm", "mean_x2_norm", "mean_g_us", "adc_clip_fraction")


def stats_summary(stats: Mapping | None) -> dict:
    """Means over analog layers of the activation statistics in :data:`STATS_KEYS`."""
    layers = [e for e in (stats or {}).get("layers", {}).values() if isinstance(e, dict)]
    out = {}
    for k in STATS_KEYS:
        vals = [float(e[k]) for e in layers if isinstance(e.get(k), (int, float))]
        if vals:
            out[k] = sum(vals) / len(vals)
    return out


def _vocab_id(vocab):
    """What makes two vocabularies the same: the character list (character models) or the tokenizer itself
    and the id range (BPE vocabularies of published checkpoints)."""
    chars = getattr(vocab, "chars", None)
    if chars is not None:
        return ("chars", chars)
    return ("bpe", vocab.size, vocab.tokenizer.to_str())


def default_judge(model_ref: str, judge: str = "shakespeare-ar") -> str | None:
    """``judge`` when it shares ``model_ref``'s vocabulary (the character models), else None: a published
    checkpoint's passages have no known digital AR twin here (name one that shares its tokenizer)."""
    return judge if _vocab_id(model(model_ref).vocab) == _vocab_id(model(judge).vocab) else None


def check(spec: Experiment) -> None:
    """Every cheap check of ``spec`` before any chip is programmed: the card and overrides load, the model
    and the judge load, the task fits the model's context, and the model fits the card's tiles. Raises
    ConfigError/ValueError with one line naming the field."""
    from analogdiff.energy import Autoregressive, estimate

    hw = hardware(spec.card, spec.overrides)
    lm = model(spec.model)
    C = lm.shape.context_len
    estimate(lm.shape, hw, decode=Autoregressive(seq_len=C))  # tiles vs chip capacity
    if spec.score is not None and spec.score.text is not None:
        from analogdiff.lm.evaluate import scored_tokens

        ids, _ = text_ids(lm, spec.score.text, spec.score.eval_chars)
        if scored_tokens(lm, ids) == 0:
            checks.fail("text", f"text file {checks.shown_path(spec.score.text)}: its {ids.numel()} token(s) leave "
                                f"nothing to score (the first is context for {spec.model})")
    elif spec.score is not None and spec.score.eval_chars is not None and spec.score.eval_chars < C + 1:
        checks.fail("eval_chars", f"must be at least context_len + 1 = {C + 1} characters (one window), "
                                  f"got {spec.score.eval_chars}")
    c = spec.complete
    if c is not None:
        if c.prompt_len + c.n_new > C:
            checks.fail("n_new", f"prompt_len + n_new = {c.prompt_len + c.n_new} exceeds the model's context_len {C}")
        if lm.kind == "mdlm" and c.steps is not None and c.steps > c.prompt_len + c.n_new:
            checks.fail("steps", f"must be at most prompt_len + n_new = {c.prompt_len + c.n_new}, got {c.steps}")
        if c.judge is not None:
            _check_judge(c.judge, lm, spec.model, c.prompt_len + c.n_new)
        from analogdiff.lm.completion import prompt_windows

        prompt_windows(lm.vocab, c.split, c.n_prompts, c.prompt_len, c.n_new)
    g = spec.generate
    if g is None:
        return
    L = g.seq_len or C
    if L > C:
        checks.fail("seq_len", f"{L} exceeds the model's context_len {C}")
    prompt_len = len(lm.vocab.encode(g.prompt)) if g.prompt else 0
    if prompt_len >= L:
        checks.fail("prompt", f"{prompt_len} characters leave nothing to generate in seq_len {L}")
    if lm.kind == "mdlm":
        if g.block_len is not None and g.block_len > L:
            checks.fail("block_len", f"{g.block_len} exceeds seq_len {L}")
        n_blocks = -(-L // (g.block_len or L))
        if not n_blocks <= g.steps <= L:
            checks.fail("steps", f"must be between the number of blocks ({n_blocks}) and seq_len ({L}), got {g.steps}")
    if g.judge is not None:
        _check_judge(g.judge, lm, spec.model, L)


def _check_judge(ref: str, lm, model_ref: str, L: int) -> None:
    judge = model(ref)
    if judge.kind != "ar":
        checks.fail("judge", f"{ref} is not an autoregressive model")
    if _vocab_id(judge.vocab) != _vocab_id(lm.vocab):
        checks.fail("judge", f"{ref} has another vocabulary than {model_ref}")
    if judge.shape.context_len < L:
        checks.fail("judge", f"{ref}'s context ({judge.shape.context_len}) is shorter than seq_len {L}")


# --------------------------------------------------------------------------- running


def run_seed(spec: Experiment, seed: int | None, on_step: Callable | None = None) -> dict:
    """One programming seed of ``spec`` (None: a card without noise, programmed with seed 0).

    Returns ``{"seed", "metrics": {...}, "cost": {"score": CostReport dict, "generate": ...},
    "stats": {"score": {...}, "generate": {...}} (analog cards), "texts": [...] (generate),
    "per_prompt": {metric: [one value per prompt]} (complete)}``.
    """
    from analogdiff.crossbar.layers import collect_stats, reset_stats
    from analogdiff.trace import Trace

    hw = hardware(spec.card, spec.overrides)
    lm = model(spec.model)
    analog = hw.kind == "analog"
    runner = program(spec.model, hw, 0 if seed is None else seed, spec.drift_time_s) if analog else lm
    out: dict[str, Any] = {"seed": seed, "metrics": {}, "cost": {}, "stats": {}}
    tasks = [("score", spec.score), ("generate", spec.generate), ("complete", spec.complete)]
    for name, task in tasks:
        if task is None:
            continue
        if analog:
            reset_stats(runner)
        if name == "score":
            trace = Trace()
            out["metrics"].update(_score(runner, lm, task, trace))
        elif name == "complete":
            metrics, out["per_prompt"], trace = _complete(runner, lm, task, seed)
            out["metrics"].update(metrics)
        else:
            metrics, trace, texts = _generate(runner, lm, task, on_step)
            out["metrics"].update(metrics)
            out["texts"] = texts
        checks.finite_figures("metrics", out["metrics"],
                              f"{spec.model} on {hw.name} (seed {seed}, drift {spec.drift_time_s:g} s)")
        stats = collect_stats(runner) if analog else None
        out["cost"][name] = _price(lm, hw, trace, stats)
        if analog:
            out["stats"][name] = stats
    if analog and hw.tile.ir_compensation is not None:
        out["calibration"] = calibration_cost(runner, hw)
    return out


def calibration_cost(amodel, hw) -> dict:
    """The one-off cost of fitting the IR-drop correction of ``amodel`` at programming (per chip, not per
    token): ``energy.estimate_calibration`` of its matrices and calibration vectors."""
    from analogdiff.crossbar.layers import analog_layers
    from analogdiff.energy import estimate_calibration

    layers = [(m.in_features, m.out_features, m.ir_comp["vectors"]) for _, m in analog_layers(amodel)
              if m.ir_comp is not None]
    return estimate_calibration(layers, hw)


def run(spec: Experiment, on_step: Callable | None = None) -> dict:
    """Every seed of ``spec`` (a card without noise runs once), and the summary over seeds.

    Returns ``{"experiment": spec.to_dict(), "hardware": card name, "per_seed": [run_seed(...)...],
    "metrics": {key: stats.summary}, "cost": {task: {"energy_per_token_j": summary,
    "latency_per_token_s": summary, ...}}}``, and ``"calibration"`` (``calibration_cost``: once per chip)
    on cards with ``tile.ir_compensation``.
    """
    from analogdiff.stats import summary

    hw = hardware(spec.card, spec.overrides)
    seeds = list(spec.seeds) if stochastic(hw) else [None]
    per_seed = [run_seed(spec, s, on_step) for s in seeds]
    metrics = {k: summary([p["metrics"][k] for p in per_seed])
               for k in per_seed[0]["metrics"] if all(k in p["metrics"] for p in per_seed)}
    cost = {task: {k: summary([p["cost"][task][k] for p in per_seed])
                   for k in ("energy_per_token_j", "latency_per_token_s")}
            for task in per_seed[0]["cost"]}
    out = {"experiment": spec.to_dict(), "hardware": hw.name, "kind": hw.kind, "seeds_run": seeds,
           "per_seed": per_seed, "metrics": metrics, "cost": cost}
    if "calibration" in per_seed[0]:  # the same vectors and matrices on every chip
        out["calibration"] = per_seed[0]["calibration"]
    return out


run_experiment = run
"""``ad.run_experiment(spec)``: the public name of :func:`run`."""
