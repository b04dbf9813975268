"""The card's pictures: a token-length histogram and a pass-rate plot, as PNG files in RUN/plots/.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, so no global state and
no display needed).
"""

from __future__ import annotations

from pathlib import Path

from distill.publishing.card_stats import CardStats
from distill.run import RunDir

TOKEN_PLOT = "token_lengths.png"
PASS_RATE_PLOT = "pass_rate.png"
_BLUE, _ORANGE, _GREY = "#3b75af", "#ef8636", "#8c8c8c"


def draw_plots(stats: CardStats, run: RunDir) -> dict[str, Path]:
    """Draw the plots `stats` has data for; returns {name: path}. Stale plots of a missing kind are removed."""
    run.plots.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, Path] = {}
    for name, draw in ((TOKEN_PLOT, _token_lengths), (PASS_RATE_PLOT, _pass_rates)):
        path = run.plots / name
        figure = draw(stats)
        if figure is None:
            path.unlink(missing_ok=True)
            continue
        _save(figure, path)
        drawn[name] = path
    return drawn


def _figure(width: float, height: float):  # noqa: ANN202 - matplotlib is imported lazily
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> None:  # noqa: ANN001
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    tmp.replace(path)


def _token_lengths(stats: CardStats):  # noqa: ANN202
    if not stats.token_values or stats.token_lengths is None:
        return None
    s = stats.token_lengths
    figure = _figure(7.5, 3.6)
    ax = figure.add_subplot()
    values = [max(v, 1) for v in stats.token_values]
    bins: int | list[float] = min(60, max(10, len(set(values)) // 2))
    skewed = s["max"] > 8 * max(s["median"], 1)  # a long tail: log-spaced bins keep the bulk readable
    if skewed:
        low, high = min(values), max(values) * 1.01
        bins = [low * (high / low) ** (i / 40) for i in range(41)]
        ax.set_xscale("log")
        ticks = [m * 10**e for e in range(1, 8) for m in (1, 2, 5) if low <= m * 10**e <= high]
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
        ax.minorticks_off()
    ax.hist(values, bins=bins, color=_BLUE, alpha=0.85, edgecolor="white", linewidth=0.4)
    for value, label, style in (
        (s["median"], "median", "-"),
        (s["mean"], "mean", "--"),
        (s["p95"], "p95", ":"),
    ):
        ax.axvline(value, color=_ORANGE, linestyle=style, linewidth=1.5, label=f"{label} {value:,.0f}")
    ax.set_xlabel(f"tokens per conversation ({_method(stats)}{', log scale' if skewed else ''})")
    ax.set_ylabel("samples")
    ax.set_title(f"Token lengths of the {stats.rows_sft:,} samples in the sft config", fontsize=11)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def _method(stats: CardStats) -> str:
    return {
        "tokenizer": f"tokenizer {Path(stats.tokenizer).name}" if stats.tokenizer else "tokenizer",
        "teacher_usage": "teacher-reported usage",
        "approximation": "approximate count",
    }.get(stats.token_method or "", "tokens")


def _pass_rates(stats: CardStats):  # noqa: ANN202
    results = [r for r in stats.verification or [] if r.pass_rate is not None]
    rates = stats.prompt_pass_rates
    if not results and not rates:
        return None
    panels = int(bool(results)) + int(bool(rates))
    figure = _figure(5.0 * panels + 1.5, 3.8)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    if results:
        _verifier_bars(axes[0], results)
    if rates:
        _prompt_histogram(axes[-1], rates)
    return figure


def _verifier_bars(ax, results) -> None:  # noqa: ANN001
    sources = list(dict.fromkeys(r.source for r in results))
    verifiers = list(dict.fromkeys(r.verifier for r in results))
    width = 0.8 / len(verifiers)
    colors = [_BLUE, _ORANGE, _GREY, "#55a868"]
    for j, verifier in enumerate(verifiers):
        xs, ys, labels = [], [], []
        for i, source in enumerate(sources):
            match = [r for r in results if r.source == source and r.verifier == verifier]
            if match:
                xs.append(i + (j - (len(verifiers) - 1) / 2) * width)
                ys.append(100 * match[0].pass_rate)
                labels.append(f"{ys[-1]:.0f}%")
        bars = ax.bar(xs, ys, width=width * 0.95, color=colors[j % len(colors)], label=verifier)
        ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
    ax.set_xticks(range(len(sources)), sources, rotation=20 if len(sources) > 3 else 0)
    ax.set_ylim(0, 110)
    ax.set_ylabel("samples verified correct (%)")
    ax.set_title("Pass rate per source and verifier", fontsize=11)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)


def _prompt_histogram(ax, rates: list[float]) -> None:  # noqa: ANN001
    ax.hist(rates, bins=[i / 10 for i in range(11)], color=_BLUE, edgecolor="white")
    ax.set_xlabel("share of a prompt's samples that are correct")
    ax.set_ylabel("prompts")
    solved = sum(r > 0 for r in rates)
    ax.set_title(f"Per-prompt pass rate ({solved:,} of {len(rates):,} solved at least once)", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
