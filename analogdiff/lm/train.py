"""Training of the character LMs: ``analogdiff train --model mdlm|ar [--steps N] [--out DIR] ...``.

Resumable: every ``--checkpoint-every`` seconds the full training state (weights, AdamW moments, step,
data-sampler and noise RNG states) is written to ``DIR/train_state.safetensors`` + ``DIR/train_state.json``;
rerunning the same command continues from there. At the end the model is evaluated on the validation and
test plays and written as ``DIR/NAME.safetensors`` + ``DIR/NAME.json`` (the model card).

``python -m analogdiff.lm.train ARGS`` takes exactly the arguments of ``analogdiff train ARGS``
(both use :func:`add_train_arguments` and :func:`run_train`).
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import shlex
import sys
import time

import torch

from analogdiff import checks
from analogdiff.checks import ConfigError

from . import corpus
from .checkpoint import load_tensors, save_model, save_tensors, write_json
from .diffusion import ar_loss, mdlm_loss, nats_to_bits
from .evaluate import bits_per_char
from ..shapes import ModelShape
from .model import KINDS, CharLM, char_shape, n_params

# Arguments that do not change the training trajectory (may differ between a run and its resumption).
_RUNTIME_ONLY = ("out", "threads", "progress", "checkpoint_every", "final_eval_chars")
# Arguments that may change on resumption: a new --steps re-targets the cosine decay from the current step
# (the card lists every command that ran, so this is visible).
_RETARGETABLE = ("steps",)


ARCHITECTURE = ("pre-LayerNorm transformer, rotary positions, GELU MLP, untied output head; "
                "bidirectional attention for mdlm, causal for ar")


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``train`` arguments to ``parser`` (shared by the CLI and ``python -m analogdiff.lm.train``)."""
    a = parser.add_argument
    a("--model", required=True, choices=KINDS, help="mdlm: masked diffusion (bidirectional); ar: causal twin")
    a("--steps", type=int, default=3000, help="optimizer steps (the cosine schedule ends here)")
    a("--out", default="runs", help="output directory (resumes from DIR/train_state.* if present)")
    a("--name", default=None, help="checkpoint name (default shakespeare-<model>)")
    a("--seed", type=int, default=0, help="seed of the initialization, data sampler and masking noise")
    a("--batch-size", type=int, default=16, help="sequences per step")
    a("--context-len", type=int, default=256, help="characters per training sequence")
    a("--n-layers", type=int, default=4)
    a("--d-model", type=int, default=192)
    a("--n-heads", type=int, default=4)
    a("--n-kv-heads", type=int, default=None, help="default: n-heads")
    a("--d-ff", type=int, default=None, help="default: 4 * d-model")
    a("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    a("--min-lr", type=float, default=1e-4, help="learning rate at the end of the cosine decay")
    a("--warmup-steps", type=int, default=100)
    a("--weight-decay", type=float, default=0.1, help="on matrices only")
    a("--grad-clip", type=float, default=1.0)
    a("--eval-every", type=int, default=250, help="validate every N steps")
    a("--eval-chars", type=int, default=16384, help="validation characters per periodic validation")
    a("--final-eval-chars", type=int, default=None, help="characters per split for the final metrics (all)")
    a("--checkpoint-every", type=float, default=300.0, help="seconds between resumable checkpoints")
    a("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    a("--init", default=None, help="start from this model (a shipped name or .safetensors path) instead of a "
                                   "random initialization; its shape replaces --n-layers/--d-model/...")
    a("--hwa", default=None, metavar="CARD", help="hardware-aware training on this analog card (needs --init): "
                                                  "the card's noise, drift and converters in every training forward "
                                                  "(analogdiff.crossbar.hwa)")
    a("--hwa-clip-sigma", type=float, default=3.0, help="--hwa: clip each output channel to ±sigma·std after every "
                                                        "step (0: no clipping)")
    a("--hwa-t-min-s", type=float, default=1.0, help="--hwa: drift times are drawn log-uniform from here ...")
    a("--hwa-t-max-s", type=float, default=365 * 86400.0, help="--hwa: ... to here (seconds after programming)")
    a("--hwa-ir-drop", action="store_true", help="--hwa: IR drop through the wires' effective conductance "
                                                 "(~10 s of one core more per step for the shipped models)")
    return parser


_INT_BOUNDS = {"steps": (1, 10 ** 8), "seed": (0, checks.MAX_SEED), "batch_size": (1, 65536),
               "context_len": (1, 65536), "n_layers": (1, 256), "d_model": (1, 16384), "n_heads": (1, 1024),
               "n_kv_heads": (1, 1024), "d_ff": (1, 65536), "warmup_steps": (0, 10 ** 8), "eval_every": (1, 10 ** 8),
               "eval_chars": (1, 10 ** 8), "final_eval_chars": (1, 10 ** 9), "threads": (1, 4096)}
"""Integer arguments (None allowed where the default is None)."""
_NUM_BOUNDS = {"lr": (0.0, 10.0, True), "min_lr": (0.0, 10.0, False), "weight_decay": (0.0, 100.0, False),
               "grad_clip": (0.0, 1e6, True), "checkpoint_every": (0.0, 1e7, False)}
"""Real arguments: (low, high, low excluded)."""
MAX_TRAIN_PARAMS = 2 * 10 ** 9
"""Parameters of a model trained here (weights, gradients and two AdamW moments: 32 GB in float32)."""
MAX_TOKENS_PER_STEP = 2 ** 22
"""batch_size × context_len: the activations of one step must fit in memory."""


def _validate(args) -> Shape:
    """Every argument checked before anything is written or built; returns the model shape."""
    for field, (lo, hi) in _INT_BOUNDS.items():
        value = getattr(args, field)
        if value is not None or field in ("steps", "seed", "batch_size", "context_len", "n_layers", "d_model",
                                          "n_heads", "warmup_steps", "eval_every", "eval_chars"):
            checks.integer(f"--{field.replace('_', '-')}", value, lo, hi)
    for field, (lo, hi, lo_open) in _NUM_BOUNDS.items():
        setattr(args, field, checks.number(f"--{field.replace('_', '-')}", getattr(args, field), lo, hi, lo_open))
    if args.min_lr > args.lr:
        raise ConfigError(f"--min-lr: {args.min_lr:g} must not exceed --lr {args.lr:g}")
    if args.model not in KINDS:
        raise ConfigError(f"--model: {checks.short(args.model)} is not one of {', '.join(KINDS)}")
    checks.text("--out", args.out, checks.MAX_PATH_CHARS)
    if args.name is not None:
        checks.file_name("--name", args.name)
    _validate_hwa(args)
    shape = shape_from_args(args)
    if args.batch_size * args.context_len > MAX_TOKENS_PER_STEP:
        raise ConfigError(f"--batch-size × --context-len: {args.batch_size * args.context_len:,} tokens per step; "
                          f"at most {MAX_TOKENS_PER_STEP:,}")
    hd = shape.d_model // shape.n_heads
    per_layer = shape.d_model * (shape.n_heads + 2 * shape.n_kv_heads) * hd + shape.d_model ** 2 \
        + 2 * shape.d_model * shape.d_ff
    params = shape.n_layers * per_layer + 2 * shape.vocab_size * shape.d_model
    if params > MAX_TRAIN_PARAMS:
        raise ConfigError(f"--n-layers/--d-model/--d-ff: about {params:,} parameters; at most "
                          f"{MAX_TRAIN_PARAMS:,} can be trained here")
    return shape


def _validate_hwa(args) -> None:
    """--init/--hwa and their options (one-line ConfigErrors)."""
    if args.init is not None:
        from .checkpoint import read_json, resolve

        try:
            path = resolve(checks.text("--init", args.init, checks.MAX_PATH_CHARS)).with_suffix(".json")
            kind = read_json(path).get("kind")
        except ConfigError as e:
            raise ConfigError(f"--init: {e}") from None
        if kind != args.model:
            raise ConfigError(f"--init: {checks.short(args.init)} is a {kind!r} model, --model is {args.model}")
    args.hwa_clip_sigma = checks.number("--hwa-clip-sigma", args.hwa_clip_sigma, 0.0, 100.0)
    args.hwa_t_min_s = checks.drift_time_s("--hwa-t-min-s", args.hwa_t_min_s)
    args.hwa_t_max_s = checks.drift_time_s("--hwa-t-max-s", args.hwa_t_max_s)
    if args.hwa_t_min_s <= 0 or args.hwa_t_min_s > args.hwa_t_max_s:
        raise ConfigError(f"--hwa-t-min-s: must be > 0 s and at most --hwa-t-max-s ({args.hwa_t_max_s:g} s), "
                          f"got {args.hwa_t_min_s:g}")
    if args.hwa is None:
        return
    checks.text("--hwa", args.hwa, checks.MAX_PATH_CHARS)
    if args.init is None:
        raise ConfigError("--hwa: hardware-aware training fine-tunes a trained model; give --init MODEL")
    from ..config import load_hardware
    from ..crossbar.hwa import check_card

    try:
        hw = load_hardware(args.hwa)
    except ConfigError as e:
        raise ConfigError(f"--hwa: {e}") from None
    check_card(hw)


def _initial_model(args) -> CharLM:
    """A fresh model (seeded), or the --init model with an empty card (the new card is written at the end)."""
    if args.init is None:
        return CharLM(args.model, shape_from_args(args), seed=args.seed)
    from .checkpoint import load_model

    model = load_model(args.init)
    if not isinstance(model, CharLM) or model.kind != args.model:
        raise ConfigError(f"--init: {checks.short(args.init)} is not a character {args.model} model "
                          f"(kind {getattr(model, 'kind', type(model).__name__)!r})")
    model.card = {"kind": model.kind, "shape": model.shape.to_dict()}
    return model


def _default_name(args) -> str:
    return args.name or f"shakespeare-{args.model}" + ("-hwa" if args.hwa else "")


def _attach_hwa(model: CharLM, args) -> tuple[list, torch.Generator]:
    """--hwa: HwaLinear layers (clipped, converters calibrated on 8 training windows) and their generator."""
    from ..config import load_hardware
    from ..crossbar import hwa

    gen = torch.Generator().manual_seed(args.seed + 3)
    layers = hwa.attach(model.backbone, load_hardware(args.hwa), gen, ir_drop=args.hwa_ir_drop)
    hwa.clip_weights_(layers, args.hwa_clip_sigma)
    window = corpus.random_windows(corpus.split_ids("train"), 8, model.shape.context_len,
                                   torch.Generator().manual_seed(args.seed + 4))  # (8, L) clean text
    hwa.calibrate(model, layers, lambda m: m(window))
    return layers, gen


def shape_from_args(args) -> ModelShape:
    return char_shape(name=_default_name(args), n_layers=args.n_layers,
                      d_model=args.d_model, n_heads=args.n_heads, n_kv_heads=args.n_kv_heads or args.n_heads,
                      d_ff=args.d_ff or 4 * args.d_model, vocab_size=corpus.Vocab().size,
                      context_len=args.context_len)


def learning_rate(step: int, args) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay from ``lr`` to ``min_lr`` at ``steps``."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    progress = min(1.0, (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps))
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1.0 + math.cos(math.pi * progress))


def _optimizer(model: CharLM, args) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.99))


def _save_state(out: pathlib.Path, model, opt, gens: dict, info: dict) -> None:
    tensors = {f"model.{k}": v for k, v in model.backbone.state_dict().items()}
    opt_state = opt.state_dict()
    for idx, st in opt_state["state"].items():
        for key, value in st.items():
            tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value)
    for name, gen in gens.items():
        tensors[f"rng.{name}"] = gen.get_state()
    full = dict(info, param_groups=opt_state["param_groups"])
    # The safetensors file (written atomically) is authoritative: its metadata holds the same JSON, so a kill
    # between the two writes never leaves an inconsistent state. The .json is a readable copy.
    save_tensors(tensors, out / "train_state.safetensors", metadata={"info": json.dumps(full)})
    write_json(full, out / "train_state.json")


def _load_state(out: pathlib.Path, model, opt, gens: dict, config: dict) -> dict | None:
    path = out / "train_state.safetensors"
    if not path.exists():
        return None
    tensors, meta = load_tensors(path)
    try:
        info = json.loads(meta["info"])
    except (KeyError, TypeError, json.JSONDecodeError, RecursionError):
        info = None
    if not (isinstance(info, dict) and isinstance(info.get("config"), dict) and isinstance(info.get("step"), int)
            and isinstance(info.get("param_groups"), list)):
        raise ConfigError(f"--out: {path} holds no usable training state (no config, step or optimizer "
                          f"groups); delete it to restart")
    for key, value in config.items():
        if key not in _RETARGETABLE and info["config"].get(key) != value:
            raise ConfigError(f"--out: {out} holds a run with {key}={info['config'].get(key)!r}, this command has "
                             f"{value!r}; use another --out or the same arguments")
    try:
        model.backbone.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, key = k.split(".", 2)
                state.setdefault(int(idx), {})[key] = v
        opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
        for name, gen in gens.items():
            gen.set_state(tensors[f"rng.{name}"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:  # tensors missing or of other shapes
        raise ConfigError(f"--out: {path} holds a training state that does not match this model "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                          f"delete it to restart") from None
    return info


def _command_line() -> str:
    argv = sys.argv[1:]
    if "train" in argv:
        argv = argv[argv.index("train") + 1:]
    return "analogdiff train " + " ".join(shlex.quote(a) for a in argv)


def run_train(args, command: str | None = None) -> pathlib.Path:
    """Train per ``args`` (from :func:`add_train_arguments`); returns the final ``.safetensors`` path."""
    from tqdm import tqdm

    shape = _validate(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in sorted(vars(args).items()) if k not in _RUNTIME_ONLY and not callable(v)}
    model = _initial_model(args)
    hwa_layers = None
    gens = {"data": torch.Generator().manual_seed(args.seed + 1), "noise": torch.Generator().manual_seed(args.seed + 2)}
    if args.hwa:
        from ..crossbar import hwa

        hwa_layers, gens["hwa"] = _attach_hwa(model, args)
    opt = _optimizer(model, args)
    info = _load_state(out, model, opt, gens, config) or {
        "config": config, "step": 0, "tokens_seen": 0, "wall_s": 0.0, "validation": [],
        "command": command or _command_line()}
    if info["step"]:
        print(f"resuming {out} at step {info['step']}/{args.steps}", file=sys.stderr)
        this_command = command or _command_line()
        info.setdefault("commands", [info["command"]])
        if info["config"].get("steps") != args.steps:
            info["commands"].append(f"{this_command}  # resumed at step {info['step']}, steps re-targeted")
            info["config"] = config
            info["command"] = this_command
    if info["step"] > args.steps:
        raise ConfigError(f"--steps: the run in {out} is already at step {info['step']}, got --steps {args.steps}")
    train_ids = corpus.split_ids("train")
    window = model.shape.context_len + (1 if args.model == "ar" else 0)
    model.train()
    bar = tqdm(total=args.steps, initial=info["step"], disable=not args.progress, dynamic_ncols=True,
               mininterval=2.0 if sys.stderr.isatty() else 30.0, desc=f"train {args.model}")
    t_last_save = t_seg = time.perf_counter()
    wall0, loss_ema, tok_seg = info["wall_s"], None, 0
    while info["step"] < args.steps:
        for group in opt.param_groups:
            group["lr"] = learning_rate(info["step"], args)
        x = corpus.random_windows(train_ids, args.batch_size, window, gens["data"])  # (B, L) or (B, L+1)
        if hwa_layers:  # one drift time per step, log-uniform between --hwa-t-min-s and --hwa-t-max-s
            hwa.set_step(hwa_layers, hwa.sample_drift_time_s(gens["hwa"], args.hwa_t_min_s, args.hwa_t_max_s))
        loss = mdlm_loss(model, x, gens["noise"]) if args.model == "mdlm" else ar_loss(model, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        if hwa_layers:
            hwa.clip_weights_(hwa_layers, args.hwa_clip_sigma)
        info["step"] += 1
        info["tokens_seen"] += args.batch_size * args.context_len
        tok_seg += args.batch_size * args.context_len
        now = time.perf_counter()
        info["wall_s"] = wall0 + (now - t_seg)
        bits = nats_to_bits(float(loss.detach()))
        loss_ema = bits if loss_ema is None else 0.98 * loss_ema + 0.02 * bits
        bar.set_postfix(bits=f"{loss_ema:.3f}", tok_s=f"{tok_seg / (now - t_seg):.0f}", refresh=False)
        bar.update(1)
        if info["step"] % args.eval_every == 0 or info["step"] == args.steps:
            val = bits_per_char(model, "validation", max_chars=args.eval_chars, seed=0)
            model.train()
            info["validation"].append({"step": info["step"], "bits_per_char": round(val, 4),
                                       "train_bits_ema": round(loss_ema, 4)})
            bar.write(f"step {info['step']}: validation {val:.4f} bits/char (train ~{loss_ema:.3f}), "
                      f"{tok_seg / (now - t_seg):.0f} tok/s, {info['wall_s'] / 60:.1f} min")
        if now - t_last_save > args.checkpoint_every or info["step"] == args.steps:
            _save_state(out, model, opt, gens, info)
            t_last_save = time.perf_counter()
    bar.close()
    return _finish(model, args, info, out)


def _finish(model: CharLM, args, info: dict, out: pathlib.Path) -> pathlib.Path:
    model.eval()
    t0 = time.perf_counter()
    metrics = {split: round(bits_per_char(model, split, max_chars=args.final_eval_chars,
                                          t_samples=2, seed=0), 4)
               for split in ("validation", "test")}
    name = _default_name(args)
    card = {
        "name": name,
        "kind": args.model,
        "description": ("character-level masked diffusion LM (MDLM, absorbing mask, linear schedule)"
                        if args.model == "mdlm" else "character-level autoregressive LM (causal twin)"),
        "architecture": ARCHITECTURE,
        "n_params": n_params(model),
        "split": {s: list(corpus.split_plays(s)) for s in corpus.SPLITS},
        "training": {"steps": info["step"], "tokens_seen": info["tokens_seen"], "wall_time_s": round(info["wall_s"], 1),
                     "seed": args.seed, "command": info["command"], "config": info["config"],
                     "commands": info.get("commands", [info["command"]]),
                     "validation_history": info["validation"], "torch": torch.__version__},
        "metrics": {"bits_per_char": metrics,
                    "bits_per_char_kind": "NELBO bound (2 t-samples per window)" if args.model == "mdlm"
                    else "exact NLL", "eval_seconds": round(time.perf_counter() - t0, 1)},
    }
    if args.init is not None:
        card["training"]["init"] = args.init
        card["description"] += f", fine-tuned from {args.init}"
    if args.hwa:
        card["description"] += f" with hardware-aware training on {args.hwa}"
        card["training"]["hwa"] = {
            "card": args.hwa, "clip_sigma_per_channel": args.hwa_clip_sigma,
            "drift_time_s": [args.hwa_t_min_s, args.hwa_t_max_s], "drift_time_sampling": "log-uniform, one per step",
            "ir_drop": args.hwa_ir_drop,
            "injected": "programming noise, stuck devices, drift with the card's compensation, read noise, "
                        "DAC and ADC quantization (straight-through)" + (", IR drop" if args.hwa_ir_drop else ""),
            "module": "analogdiff.crossbar.hwa"}
    path = save_model(model, out / f"{name}.safetensors", extra_card=card)
    print(f"wrote {path} (validation {metrics['validation']:.4f}, test {metrics['test']:.4f} bits/char)",
          file=sys.stderr)
    return path


def train(kind: str, out_dir, steps: int = 3000, seed: int = 0, **options) -> pathlib.Path:
    """Python entry point: ``train("mdlm", "runs/mdlm", steps=..., seed=0, batch_size=16, ...)``.

    ``options`` are the long options of ``analogdiff train`` with dashes as underscores.
    """
    parser = add_train_arguments(argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["--model", kind])
    unknown = set(options) - set(vars(args))
    if unknown:
        raise ConfigError(f"train: unknown option(s) {', '.join(sorted(unknown))}")
    vars(args).update(out=str(out_dir), steps=steps, seed=seed, **options)
    command = f"analogdiff.lm.train({kind!r}, {str(out_dir)!r}, steps={steps}, seed={seed}" + "".join(
        f", {k}={v!r}" for k, v in sorted(options.items())) + ")"
    return run_train(args, command=command)


def main(argv: list[str] | None = None) -> int:
    parser = add_train_arguments(argparse.ArgumentParser(prog="analogdiff train", description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    try:
        run_train(args)
    except (ConfigError, OSError) as e:
        print(f"analogdiff train: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
