#!/usr/bin/env python3
"""Plot the output of `ember-eval mmlu --out DIR`.

Reads (both written by ember-eval into DIR):
  results.json    per-model summary: overall and per-subject accuracy, the histogram of
                  predicted letters and timing (wall/CPU seconds, GPU seconds only when the
                  model ran on a GPU, prompt tokens per second).
  answers.jsonl   one line per model and question:
                  {"model", "id": "<subject>/<index>", "answer", "pred", "logits"}.

Writes into OUTDIR (default: DIR), each figure as PNG (dpi 120) and PDF:
  accuracy_by_subject   accuracy per subject and overall, one bar per model, chance line.
  timing                wall, CPU and GPU seconds per model, prompt tokens/s per model.
  mistake_overlap       2+ models: heatmap of questions both models get wrong versus the
                        count expected if their mistakes were independent, plus how often
                        they pick the same wrong letter; 1 model: errors per subject.
  answer_letters        per model, predicted letters A-D beside the correct letters.

It also prints a short summary (pairwise mistake overlap, files written) to stdout.
The answer-based figures use only questions whose ids appear for every model.

Usage:
  python3 examples/eval/plot_mmlu.py DIR [--out OUTDIR]

Needs matplotlib (Debian: apt install python3-matplotlib); runs headless (Agg).
Exit status: 0 on success, 2 on missing or invalid input.
"""
import argparse
import json
import math
import os
import re
import sys

LETTERS = ["A", "B", "C", "D"]
CHANCE = 0.25
DPI = 120
EXIT_INPUT = 2
TIMING_KEYS = ("load_s", "wall_s", "cpu_s", "gpu_s", "prompt_tokens", "reused_tokens",
               "prompt_tokens_per_s")


class InputError(Exception):
    """Missing or malformed input; reported as one line and exit status 2."""


# ----------------------------------------------------------------------------- input

def load_json_file(path):
    if not os.path.isfile(path):
        raise InputError(f"{path} not found (run `ember-eval mmlu --out DIR` first)")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON: {e}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None


def as_number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what}: expected a number, got {value!r}")
    return float(value)


def load_results(path):
    """results.json -> dict with 'subjects' (list) and 'models' (list of dicts)."""
    data = load_json_file(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise InputError(f"{path}: 'models' is missing or empty")
    subjects = data.get("subjects")
    if subjects is None:
        subjects = []
    if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
        raise InputError(f"{path}: 'subjects' must be a list of strings")
    subjects = list(subjects)
    for i, m in enumerate(models):
        where = f"{path}: models[{i}]"
        if not isinstance(m, dict):
            raise InputError(f"{where}: expected an object")
        if not isinstance(m.get("name"), str) or not m["name"]:
            raise InputError(f"{where}: 'name' is missing")
        where = f"{path}: model {m['name']!r}"
        if "accuracy" in m:
            m["accuracy"] = as_number(m["accuracy"], f"{where}: accuracy")
        elif "correct" in m and "questions" in m:
            q = as_number(m["questions"], f"{where}: questions")
            m["accuracy"] = as_number(m["correct"], f"{where}: correct") / q if q else 0.0
        else:
            raise InputError(f"{where}: 'accuracy' is missing")
        subs = m.get("subjects", {})
        if not isinstance(subs, dict):
            raise InputError(f"{where}: 'subjects' must be an object")
        for s, v in subs.items():
            if not isinstance(v, dict) or "accuracy" not in v:
                raise InputError(f"{where}: subjects[{s!r}] has no 'accuracy'")
            v["accuracy"] = as_number(v["accuracy"], f"{where}: subjects[{s!r}].accuracy")
            if s not in subjects:  # tolerate a subject list that misses some
                subjects.append(s)
        m["subjects"] = subs
        timing = m.get("timing", {})
        if not isinstance(timing, dict):
            raise InputError(f"{where}: 'timing' must be an object")
        for k in TIMING_KEYS:
            if timing.get(k) is not None:
                timing[k] = as_number(timing[k], f"{where}: timing.{k}")
        m["timing"] = timing
    names = [m["name"] for m in models]
    for n in sorted(set(names)):
        if names.count(n) > 1:
            warn(f"model name {n!r} appears {names.count(n)} times in results.json; "
                 "answers.jsonl cannot tell them apart, so they are left out of the "
                 "answer-based figures")
    return {"subjects": subjects, "models": models, "shots": data.get("shots")}


def load_answers(path):
    """answers.jsonl -> {model: {id: (answer, pred)}}."""
    if not os.path.isfile(path):
        raise InputError(f"{path} not found (run `ember-eval mmlu --out DIR` first)")
    answers = {}
    duplicates = 0
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{lineno}: invalid JSON: {e}") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{lineno}: expected a JSON object")
                for key in ("model", "id", "answer", "pred"):
                    if key not in row:
                        raise InputError(f"{path}:{lineno}: '{key}' is missing")
                model, qid = row["model"], row["id"]
                if not isinstance(model, str) or not isinstance(qid, str):
                    raise InputError(f"{path}:{lineno}: 'model' and 'id' must be strings")
                per_model = answers.setdefault(model, {})
                if qid in per_model:
                    duplicates += 1
                pred = row["pred"] if isinstance(row["pred"], str) else ""
                per_model[qid] = (str(row["answer"]), pred)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text: {e}") from None
    if not answers:
        raise InputError(f"{path}: no answers in file")
    if duplicates:
        warn(f"{path}: {duplicates} repeated (model, id) lines; the last one of each is used")
    return answers


def warn(msg):
    print(f"warning: {msg}", file=sys.stderr)


def subject_of(qid):
    return qid.rsplit("/", 1)[0] if "/" in qid else qid


# ----------------------------------------------------------------------------- helpers

def wrap_label(text, width=22):
    """Wrap at spaces or after '-', '_', '.', '/' so long model names stay readable."""
    parts = re.findall(r"[^-_./ ]+[-_./ ]?|[-_./ ]", text)
    lines, cur = [], ""
    for p in parts:
        if cur and len(cur) + len(p.rstrip()) > width:
            lines.append(cur.rstrip())
            cur = ""
        while len(p) > width:  # a single piece longer than a line
            lines.append(p[:width])
            p = p[width:]
        cur += p
    if cur.strip():
        lines.append(cur.rstrip())
    return "\n".join(lines)


def display_names(models):
    """Model names, with the backend appended where two models share a name."""
    names = [m["name"] for m in models]
    out = []
    for m in models:
        n = m["name"]
        if names.count(n) > 1:
            n = f"{n} [{m.get('backend', '?')}]"
            if out.count(n):
                n = f"{n} #{out.count(n) + 1}"
        out.append(n)
    return out


def model_colors(plt, n):
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def save(fig, outdir, stem, written):
    for ext in ("png", "pdf"):
        path = os.path.join(outdir, f"{stem}.{ext}")
        try:
            fig.savefig(path, dpi=DPI)
        except OSError as e:
            raise InputError(f"cannot write {path}: {e.strerror}") from None
        written.append(path)


def fmt_seconds(s):
    if s >= 100:
        return f"{s:.0f} s"
    if s >= 10:
        return f"{s:.1f} s"
    return f"{s:.2f} s"


# ----------------------------------------------------------------------------- figures

def plot_accuracy_by_subject(plt, results, outdir, written):
    models = results["models"]
    names = display_names(models)
    colors = model_colors(plt, len(models))
    subjects = results["subjects"]
    k = len(models)

    def n_questions(subject):
        for m in models:
            q = m["subjects"].get(subject, {}).get("questions")
            if isinstance(q, (int, float)) and not isinstance(q, bool):
                return int(q)
        return None

    groups = ["overall"] + subjects
    labels = []
    for g in groups:
        if g == "overall":
            q = next((int(m["questions"]) for m in models
                      if isinstance(m.get("questions"), (int, float))), None)
            label = "OVERALL"
        else:
            q = n_questions(g)
            label = g.replace("_", " ")
        labels.append(f"{label} (n={q})" if q is not None else label)

    group_h = max(0.32, 0.16 * k + 0.14)  # inches per subject
    fig_h = min(2.2 + group_h * len(groups) + 0.25 * k, 200)
    fig, ax = plt.subplots(figsize=(10, fig_h))
    # y positions: overall first, then a gap, then subjects (top to bottom).
    ys = [0.0] + [i + 0.6 for i in range(1, len(groups))]
    bar_h = 0.8 / k
    for j, m in enumerate(models):
        vals = [m["accuracy"]] + [m["subjects"].get(s, {}).get("accuracy", math.nan)
                                  for s in subjects]
        pos = [y - 0.4 + bar_h * (j + 0.5) for y in ys]
        ax.barh(pos, [0 if math.isnan(v) else v for v in vals], height=bar_h * 0.92,
                color=colors[j], label=wrap_label(names[j], 60))
        for p, v in zip(pos, vals):
            text = "n/a" if math.isnan(v) else f"{v:.2f}"
            ax.text((0 if math.isnan(v) else v) + 0.005, p, text, va="center",
                    fontsize=7 if k <= 3 else 6)
    ax.axvline(CHANCE, color="black", linestyle="--", linewidth=1, label=f"chance ({CHANCE:g})")
    ax.axhline(0.8, color="grey", linewidth=0.6)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.get_yticklabels()[0].set_fontweight("bold")
    ax.set_ylim(ys[-1] + 0.6, -0.6)  # first group at the top
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("accuracy (fraction of questions answered correctly)")
    shots = results.get("shots")
    shots_txt = f", {shots}-shot" if isinstance(shots, int) else ""
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles, labels_ = ax.get_legend_handles_labels()
    order = [i for i, lab in enumerate(labels_) if not lab.startswith("chance")]
    order += [i for i in range(len(labels_)) if i not in order]
    ncol = 1 if k > 2 else 3
    ax.legend([handles[i] for i in order], [labels_[i] for i in order], loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=ncol, fontsize=8, frameon=False)
    legend_rows = math.ceil(sum(lab.count("\n") + 1 for lab in labels_) / ncol)
    ax.set_title(f"MMLU accuracy by subject{shots_txt}", pad=10 + 13 * legend_rows)
    fig.tight_layout()
    save(fig, outdir, "accuracy_by_subject", written)
    plt.close(fig)


def plot_timing(plt, results, outdir, written):
    models = results["models"]
    names = display_names(models)
    k = len(models)
    kinds = [("wall_s", "wall", "#4c72b0"), ("cpu_s", "CPU", "#dd8452"),
             ("gpu_s", "GPU", "#55a868")]
    fig, ax = plt.subplots(figsize=(max(6.5, 2.6 * k + 1.5), 5.5))
    width = 0.26
    top = max([m["timing"].get(key) or 0 for m in models for key, _, _ in kinds] + [1])
    for i, m in enumerate(models):
        t = m["timing"]
        if all(t.get(key) is None for key in ("wall_s", "cpu_s", "gpu_s",
                                              "prompt_tokens_per_s")):
            ax.text(i, top * 0.05, "no timing data", ha="center", va="bottom", fontsize=9,
                    color="dimgray")
            continue
        for j, (key, label, color) in enumerate(kinds):
            x = i + (j - 1) * width
            v = t.get(key)
            if v is None:
                if key == "gpu_s":
                    cpu_run = m.get("backend", "cpu") == "cpu"
                    note = "GPU: n/a\n(CPU run)" if cpu_run else "GPU: n/a"
                else:
                    note = f"{label}: n/a"
                ax.text(x, top * 0.02, note, rotation=90, ha="center", va="bottom",
                        fontsize=8, color="dimgray")
                continue
            ax.bar(x, v, width * 0.95, color=color, label=label if label not in
                   ax.get_legend_handles_labels()[1] else None)
            ax.text(x, v + top * 0.01, fmt_seconds(v), ha="center", va="bottom", fontsize=8)
        group_top = max([t.get(key) or 0 for key, _, _ in kinds])
        lines = []
        tps = t.get("prompt_tokens_per_s")
        lines.append(f"{tps:,.0f} prompt tok/s" if tps is not None else "prompt tok/s: n/a")
        if t.get("prompt_tokens") is not None:
            reused = t.get("reused_tokens")
            extra = f", {reused:,.0f} reused" if reused is not None else ""
            lines.append(f"({t['prompt_tokens']:,.0f} tokens{extra})")
        if t.get("load_s") is not None:
            lines.append(f"load {fmt_seconds(t['load_s'])}")
        ax.text(i, group_top + top * 0.07, "\n".join(lines), ha="center", va="bottom",
                fontsize=8, fontweight="bold")
    ax.set_ylim(0, top * 1.45)
    ax.set_xlim(-0.6, k - 0.4)
    ax.set_xticks(range(k))
    xt = []
    for m, n in zip(models, names):
        info = [str(m["backend"])] if m.get("backend") else []
        if m.get("threads") is not None:
            info.append(f"{m['threads']} threads")
        xt.append(wrap_label(n) + (f"\n[{', '.join(info)}]" if info else ""))
    ax.set_xticklabels(xt, fontsize=8)
    ax.set_ylabel("seconds for the whole evaluation")
    ax.set_title("MMLU evaluation time per model", pad=26)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8,
                  frameon=False)
    fig.tight_layout()
    save(fig, outdir, "timing", written)
    plt.close(fig)


def mistake_stats(answers, names, ids):
    """Pairwise overlap of wrong answers over the question ids `ids`."""
    n = len(ids)
    wrong = {m: {q for q in ids if answers[m][q][1] != answers[m][q][0]} for m in names}
    pairs = {}
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            ma, mb = names[a], names[b]
            both = wrong[ma] & wrong[mb]
            chance = len(wrong[ma]) * len(wrong[mb]) / n if n else 0.0
            same = sum(1 for q in both if answers[ma][q][1] == answers[mb][q][1])
            pairs[(a, b)] = {
                "both": len(both), "chance": chance,
                "ratio": len(both) / chance if chance > 0 else math.nan,
                "same": same, "same_frac": same / len(both) if both else math.nan,
            }
    return wrong, pairs


def poisson_binomial(ps):
    """Distribution of the number of successes of independent Bernoulli(p_i)."""
    dist = [1.0]
    for p in ps:
        nxt = [0.0] * (len(dist) + 1)
        for i, d in enumerate(dist):
            nxt[i] += d * (1 - p)
            nxt[i + 1] += d * p
        dist = nxt
    return dist


def plot_mistake_overlap(plt, answers, names, ids, subjects, outdir, written, summary):
    import numpy as np
    from matplotlib.colors import LogNorm

    n = len(ids)
    k = len(names)
    wrong, pairs = mistake_stats(answers, names, ids)

    if k == 1:
        m = names[0]
        order = [s for s in subjects if any(subject_of(q) == s for q in ids)]
        order += sorted({subject_of(q) for q in ids} - set(order))
        totals = {s: 0 for s in order}
        errs = {s: 0 for s in order}
        for q in ids:
            totals[subject_of(q)] += 1
            errs[subject_of(q)] += q in wrong[m]
        fig, ax = plt.subplots(figsize=(10, 2.4 + 0.3 * len(order)))
        ys = range(len(order))
        ax.barh(ys, [errs[s] for s in order], color="#c44e52", height=0.7)
        for y, s in zip(ys, order):
            ax.text(errs[s] + 0.3, y, f"{errs[s]}/{totals[s]} ({errs[s] / totals[s]:.0%})",
                    va="center", fontsize=8)
        ax.set_yticks(list(ys))
        ax.set_yticklabels([s.replace("_", " ") for s in order], fontsize=8)
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set_xlim(0, max(list(errs.values()) + [1]) * 1.25)
        ax.set_xlabel("questions answered wrong")
        ax.set_title(f"MMLU errors per subject: {wrap_label(m, 60)}\n"
                     f"{len(wrong[m])} of {n} wrong ({len(wrong[m]) / n:.1%})", fontsize=11)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        fig.text(0.01, 0.005, "Mistake overlap needs 2+ models with answers; there is only "
                 "one here, so this shows its errors per subject instead.", fontsize=8,
                 style="italic", color="dimgray", va="bottom")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        save(fig, outdir, "mistake_overlap", written)
        plt.close(fig)
        summary.append("Mistake overlap: needs 2+ models with answers (have 1); "
                       f"{names[0]}: {len(wrong[m])}/{n} wrong")
        return

    # --- heatmap of pairwise overlap
    ratio = np.full((k, k), np.nan)
    for (a, b), p in pairs.items():
        ratio[a, b] = ratio[b, a] = p["ratio"]
    finite = [r for r in ratio.flatten() if np.isfinite(r) and r > 0]
    span = max([2.0] + [max(r, 1 / r) for r in finite])
    shown = np.where(np.isfinite(ratio), np.clip(ratio, 1 / span, span), np.nan)
    norm = LogNorm(vmin=1 / span, vmax=span)
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("#e8e8e8")

    cell = max(1.5, 2.3 - 0.15 * k)
    fig_w = cell * k + 2.5 + 4.0
    fig_h = max(4.8, cell * k + 2.2)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(fig_w, fig_h),
                                  gridspec_kw={"width_ratios": [cell * k + 1.2, 3.6]})
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm)
    fs = 9 if k <= 3 else (8 if k <= 5 else 6.5)
    for a in range(k):
        for b in range(k):
            if a == b:
                w = len(wrong[names[a]])
                txt = f"{wrap_label(names[a], 18)}\n\nwrong: {w} / {n}\n({w / n:.0%})"
                color = "black"
            else:
                p = pairs[(min(a, b), max(a, b))]
                same = "n/a" if math.isnan(p["same_frac"]) else f"{p['same_frac']:.0%}"
                r = "n/a" if math.isnan(p["ratio"]) else f"{p['ratio']:.2f}x"
                txt = (f"both wrong: {p['both']}\n(chance: {p['chance']:.0f})\n"
                       f"ratio {r}\nsame wrong\nletter: {same}")
                rgba = cmap(norm(shown[a, b])) if np.isfinite(shown[a, b]) else (1, 1, 1, 1)
                lum = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
                color = "white" if lum < 0.5 else "black"
            ax.text(b, a, txt, ha="center", va="center", fontsize=fs if a != b else fs - 1,
                    color=color)
    short = [wrap_label(x, 16) for x in names]
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(short, fontsize=8, rotation=30 if k > 2 else 0,
                       ha="right" if k > 2 else "center")
    ax.set_yticklabels(short, fontsize=8)
    ax.set_title(f"Questions both models get wrong ({n} questions)", fontsize=11)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    ticks = sorted({1 / span, 0.5, 1.0, 2.0, span} if span > 2 else {0.5, 1.0, 2.0})
    cb.set_ticks(ticks)
    cb.set_ticklabels([f"{t:.2g}x" for t in ticks])
    cb.minorticks_off()
    cb.set_label("observed / chance (chance = wrong_i x wrong_j / N)", fontsize=8)

    # --- how many models get each question wrong, observed vs independence
    counts = [0] * (k + 1)
    for q in ids:
        counts[sum(q in wrong[x] for x in names)] += 1
    expect = [d * n for d in poisson_binomial([len(wrong[x]) / n for x in names])]
    xs = np.arange(k + 1)
    ax2.bar(xs - 0.2, counts, 0.4, color="#4c72b0", label="observed")
    ax2.bar(xs + 0.2, expect, 0.4, color="#bbbbbb", label="if mistakes were independent")
    for x, c in zip(xs, counts):
        ax2.text(x - 0.2, c, str(c), ha="center", va="bottom", fontsize=7)
    ax2.set_xticks(xs)
    ax2.set_xlabel("number of models that get the question wrong")
    ax2.set_ylabel("questions")
    ax2.set_title("Questions by number of models wrong", fontsize=11)
    ax2.set_ylim(0, max(counts + expect) * 1.18)
    ax2.legend(fontsize=8, loc="upper right")
    ax2.grid(axis="y", alpha=0.3)
    ax2.set_axisbelow(True)
    fig.suptitle("MMLU mistake overlap (same wrong letter: share of both-wrong questions "
                 "where they pick the same letter; 33% if wrong picks were uniform)",
                 fontsize=9)
    fig.tight_layout()
    save(fig, outdir, "mistake_overlap", written)
    plt.close(fig)

    summary.append(f"Mistake overlap over {n} questions answered by every model "
                   "(chance = wrong_a * wrong_b / N):")
    for (a, b), p in pairs.items():
        r = "n/a" if math.isnan(p["ratio"]) else f"{p['ratio']:.2f}"
        same = ("n/a" if math.isnan(p["same_frac"])
                else f"{p['same_frac']:.1%} ({p['same']}/{p['both']})")
        summary.append(f"  {names[a]} vs {names[b]}: both wrong {p['both']}, "
                       f"chance {p['chance']:.1f}, ratio {r}; same wrong letter {same}")


def plot_answer_letters(plt, answers, names, ids, results, outdir, written):
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    k = len(names)
    # Anything outside A-D (an empty or odd pred) is counted as "other".
    seen = {answers[m][q][i] for m in names for q in ids for i in (0, 1)}
    cats = LETTERS + (["other"] if seen - set(LETTERS) else [])

    def cat(letter):
        return cats.index(letter) if letter in LETTERS else len(cats) - 1

    gold = [0] * len(cats)
    for q in ids:
        gold[cat(answers[names[0]][q][0])] += 1
    n = len(ids)
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, sharey=True, squeeze=False,
                             figsize=(max(7.0, 4.4 * ncols + 0.6), 3.9 * nrows + 0.8))
    colors = model_colors(plt, k)
    hist_by_name = {m["name"]: m.get("answer_histogram") for m in results["models"]}
    top = 0.0
    for i, m in enumerate(names):
        ax = axes[i // ncols][i % ncols]
        pred = [0] * len(cats)
        for q in ids:
            p = answers[m][q][1]
            pred[cat(p)] += 1
        g = [c / n for c in gold]
        pr = [c / n for c in pred]
        top = max([top] + g + pr)
        xs = np.arange(len(cats))
        ax.bar(xs - 0.2, g, 0.4, color="#bbbbbb", edgecolor="dimgray", hatch="//",
               label="correct letter")
        ax.bar(xs + 0.2, pr, 0.4, color=colors[i], label="predicted letter")
        for x, a, b in zip(xs, g, pr):
            ax.text(x - 0.2, a, f"{a:.0%}", ha="center", va="bottom", fontsize=7)
            ax.text(x + 0.2, b, f"{b:.0%}", ha="center", va="bottom", fontsize=7)
        ax.axhline(0.25, color="black", linestyle=":", linewidth=0.8)
        ax.set_xticks(xs)
        ax.set_xticklabels(cats)
        acc = sum(1 for q in ids if answers[m][q][0] == answers[m][q][1]) / n
        ax.set_title(f"{wrap_label(m, 34)}\naccuracy {acc:.1%}", fontsize=9)
        ax.set_xlabel("letter")
        if i % ncols == 0:
            ax.set_ylabel("share of questions")
        ax.legend(fontsize=7, loc="best")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        # results.json carries the same histogram; flag a disagreement.
        h = hist_by_name.get(m)
        if isinstance(h, dict):
            mine = {c: 0 for c in LETTERS}
            for _, p in answers[m].values():
                if p in mine:
                    mine[p] += 1
            theirs = {c: h.get(c, 0) for c in LETTERS}
            if mine != theirs:
                warn(f"{m}: answer_histogram in results.json {theirs} differs from "
                     f"answers.jsonl {mine}")
    for j in range(k, nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    for row in axes:
        for ax in row:
            ax.set_ylim(0, max(top * 1.3, 0.3))
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    fig.suptitle(f"Predicted vs correct answer letters\n({n} questions; dotted line: 25%)",
                 fontsize=11)
    fig.tight_layout()
    save(fig, outdir, "answer_letters", written)
    plt.close(fig)


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Plot MMLU results written by `ember-eval mmlu --out DIR`.")
    ap.add_argument("dir", metavar="DIR", help="directory with results.json and answers.jsonl")
    ap.add_argument("--out", metavar="OUTDIR", help="where to write the figures (default: DIR)")
    args = ap.parse_args(argv)
    outdir = args.out or args.dir

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"error: matplotlib is needed ({e}); on Debian: apt install python3-matplotlib "
              f"(this is {sys.executable}; try /usr/bin/python3)", file=sys.stderr)
        return EXIT_INPUT

    try:
        if not os.path.isdir(args.dir):
            raise InputError(f"{args.dir}: not a directory")
        results = load_results(os.path.join(args.dir, "results.json"))
        answers = load_answers(os.path.join(args.dir, "answers.jsonl"))
        try:
            os.makedirs(outdir, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create {outdir}: {e.strerror}") from None

        # Models usable for the answer-based figures: in results.json (unique name)
        # and in answers.jsonl; questions: the ids every such model answered.
        all_names = [m["name"] for m in results["models"]]
        names = [x for x in all_names if all_names.count(x) == 1 and x in answers]
        for x in all_names:
            if x not in answers:
                warn(f"model {x!r} has no lines in answers.jsonl; left out of the "
                     "answer-based figures")
        for x in sorted(set(answers) - set(all_names)):
            warn(f"model {x!r} is in answers.jsonl but not in results.json; ignored")
        if not names:
            raise InputError("no model of results.json (with a unique name) has answers "
                             "in answers.jsonl")
        ids = set(answers[names[0]])
        for x in names[1:]:
            ids &= set(answers[x])
        if not ids:
            raise InputError("no question id is answered by every model in answers.jsonl")
        dropped = max(len(answers[x]) for x in names) - len(ids)
        if dropped:
            warn(f"{dropped} question ids are missing for some model; using the "
                 f"{len(ids)} common ones")
        subj_order = {s: i for i, s in enumerate(results["subjects"])}

        def id_key(q):
            s, _, idx = q.rpartition("/")
            return (subj_order.get(s, len(subj_order)), s,
                    int(idx) if idx.isdigit() else 0, idx)
        ids = sorted(ids, key=id_key)

        written, summary = [], []
        plot_accuracy_by_subject(plt, results, outdir, written)
        plot_timing(plt, results, outdir, written)
        plot_mistake_overlap(plt, answers, names, ids, results["subjects"], outdir,
                             written, summary)
        plot_answer_letters(plt, answers, names, ids, results, outdir, written)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT

    print(f"MMLU results in {args.dir}: {len(results['models'])} model(s), "
          f"{len(ids)} common questions")
    for m, label in zip(results["models"], display_names(results["models"])):
        extra = ""
        if m.get("correct") is not None and m.get("questions") is not None:
            extra = f" ({m['correct']}/{m['questions']})"
        print(f"  {label}: accuracy {m['accuracy']:.3f}{extra}")
    for line in summary:
        print(line)
    print("Wrote:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
