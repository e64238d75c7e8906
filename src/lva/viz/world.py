"""Pictures and charts of chapters 1-3: the grid world, its instructions and expert, the agent's
architecture, its training curves and recorded episodes."""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np

#: Colours of the three tasks, used by every chapter.
TASK_COLORS = {"goto": "#4c78a8", "pickup": "#f58518", "escape": "#54a24b"}


def show_images(images: list[np.ndarray], titles: list[str], suptitle: str | None = None, width: float = 3.0) -> Any:
    """A row of RGB images with titles (matplotlib figure)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(width * len(images), width * 1.1), squeeze=False)
    for ax, img, title in zip(axes[0], images, titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def draw_path(ax: Any, cells: list[tuple[int, int]], tile: int, color: str = "white") -> None:
    """Overlay a path of grid cells (x, y) on an ``imshow`` of a full render with ``tile`` px cells."""
    xs = [(x + 0.5) * tile for x, _ in cells]
    ys = [(y + 0.5) * tile for _, y in cells]
    ax.plot(xs, ys, "-", color=color, lw=3, alpha=0.9, solid_capstyle="round")
    ax.plot(xs[:1], ys[:1], "o", color=color, ms=9)
    ax.plot(xs[-1:], ys[-1:], "*", color="gold", ms=16, mec="black")


def task_examples(env_config: Any, seed: int = 0, tile: int = 24) -> Any:
    """One seeded episode per task (seeds ``seed``, ``seed + 1``, ...): the full room (field of view
    highlighted) beside the agent's view."""
    import matplotlib.pyplot as plt

    from lva.env import make_env
    from lva.instructions import TASK_NAMES, TASKS

    fig, axes = plt.subplots(len(TASKS), 2, figsize=(6.4, 3.2 * len(TASKS)), gridspec_kw={"width_ratios": [8, 7]})
    for k, (row, task) in enumerate(zip(axes, TASKS)):
        env = make_env(env_config, task=task)
        env.reset(seed=seed + k)
        row[0].imshow(env.full_rgb(tile_size=tile))
        row[0].set_title(f"{TASK_NAMES[task]}: “{env.mission}”", fontsize=10, loc="left")
        row[1].imshow(env.agent_view_rgb(tile))
        row[1].set_title("agent's view (7 x 7)", fontsize=10)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def expert_path(env_config: Any, instruction: str, seed: int = 0, tile: int = 32) -> Any:
    """The expert's plan for one instruction, drawn on the room, with the start and end views."""
    import matplotlib.pyplot as plt

    from lva.env import ACTION_NAMES, make_env
    from lva.expert import plan

    env = make_env(env_config)
    env.reset(seed=seed, options={"instruction": instruction})
    start_full, start_view = env.full_rgb(tile_size=tile, highlight=False), env.agent_view_rgb(tile)
    cells = [tuple(int(v) for v in env.agent_pos)]
    actions = plan(env) or []
    for action in actions:
        env.step(action)
        cell = tuple(int(v) for v in env.agent_pos)
        if cell != cells[-1]:
            cells.append(cell)
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), gridspec_kw={"width_ratios": [8, 7, 7]})
    axes[0].imshow(start_full)
    draw_path(axes[0], cells, tile)
    axes[0].set_title(f"“{instruction}”: {len(actions)} actions", fontsize=10, loc="left")
    axes[1].imshow(start_view)
    axes[1].set_title("agent's view at the start", fontsize=10)
    axes[2].imshow(env.agent_view_rgb(tile))
    axes[2].set_title("agent's view at the end", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.text(0.01, 0.01, "actions: " + ", ".join(ACTION_NAMES[a] for a in actions), fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    plt.close(fig)
    return fig


def vocabulary_chart() -> alt.Chart:
    """How often each word occurs over the instruction list, coloured by its role."""
    import pandas as pd

    from lva.instructions import ALL_TYPES, COLORS, all_instructions

    colors, types = set(COLORS), set(ALL_TYPES)
    counts: dict[str, int] = {}
    for ins in all_instructions():
        for word in ins.text.split():
            counts[word] = counts.get(word, 0) + 1

    def role(word: str) -> str:
        return (
            "colour"
            if word in colors
            else "object type"
            if word in types
            else "article"
            if word == "the"
            else "verb phrase"
        )

    df = pd.DataFrame([{"word": w, "count": c, "role": role(w)} for w, c in sorted(counts.items())])
    return (
        alt.Chart(df, title="Words of the instruction language")
        .mark_bar()
        .encode(
            x=alt.X("word:N", sort=alt.EncodingSortField("count", order="descending"), title=None),
            y=alt.Y("count:Q", title="occurrences in the instruction list"),
            color=alt.Color("role:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["word", "count", "role"],
        )
        .properties(
            width=600,
            height=220,
            description="Bar chart of how often each word occurs in the instruction list, "
            "coloured by its role (verb phrase, colour, object type, article).",
        )
    )


def length_chart(lengths: np.ndarray, tasks: np.ndarray) -> alt.Chart:
    """Distribution of expert episode lengths, one histogram per task."""
    import pandas as pd

    from lva.instructions import TASK_NAMES, TASKS

    df = pd.DataFrame({"steps": lengths.astype(int), "task": [TASK_NAMES[TASKS[t]] for t in tasks]})
    counts = df.groupby(["task", "steps"]).size().reset_index(name="episodes")
    names = [TASK_NAMES[t] for t in TASKS]
    return (
        alt.Chart(counts, title="Expert episode length")
        .mark_bar()
        .encode(
            x=alt.X("steps:O", title="actions to success"),
            y=alt.Y("episodes:Q", title="episodes"),
            color=alt.Color(
                "task:N", scale=alt.Scale(domain=names, range=[TASK_COLORS[t] for t in TASKS]), legend=None
            ),
            column=alt.Column("task:N", sort=names, title=None),
            tooltip=["task", "steps", "episodes"],
        )
        .properties(width=180, height=180)
        .properties(description="Histograms of the expert's episode length in actions, one per task.")
    )


def action_chart(actions: np.ndarray, tasks: np.ndarray) -> alt.Chart:
    """Share of each action in the demonstrations, per task."""
    import pandas as pd

    from lva.env import ACTION_NAMES
    from lva.instructions import TASK_NAMES, TASKS

    df = pd.DataFrame({"action": [ACTION_NAMES[a] for a in actions], "task": [TASK_NAMES[TASKS[t]] for t in tasks]})
    share = df.groupby(["task", "action"]).size().reset_index(name="n")
    share["share"] = share["n"] / share.groupby("task")["n"].transform("sum")
    return (
        alt.Chart(share, title="Which actions the expert takes")
        .mark_bar()
        .encode(
            y=alt.Y("task:N", sort=[TASK_NAMES[t] for t in TASKS], title=None),
            x=alt.X("share:Q", stack="normalize", axis=alt.Axis(format="%"), title="share of actions"),
            color=alt.Color(
                "action:N",
                sort=list(ACTION_NAMES),
                scale=alt.Scale(domain=list(ACTION_NAMES)),
                legend=alt.Legend(orient="bottom", title=None),
            ),
            tooltip=["task", "action", alt.Tooltip("share:Q", format=".1%"), "n"],
        )
        .properties(
            width=540,
            height=120,
            description="Stacked bars: the share of each action in the expert's demonstrations, one bar per task.",
        )
    )


def architecture_diagram(
    counts: dict[str, int], embed_dim: int = 128, token_dim: int = 100, vision: str = "grid"
) -> Any:
    """A box-and-arrow drawing of the agent, with the parameter count of each part."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10, 4.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    view = "symbolic 7x7 view" if vision == "grid" else "RGB 56x56 view"
    cnn = "residual CNN\n(from scratch)" if vision == "grid" else "ImageNet CNN (frozen)\n+ 1x1 conv, res. block"
    boxes = {
        "words": (0.1, 3.3, "instruction\n“go to the red ball”", "#eeeeee"),
        "tok": (2.1, 3.3, f"{token_dim}-d token +\nposition embeddings", "#c6dbef"),
        "tf": (4.1, 3.3, "1 transformer block\n(self-attention + MLP)", "#c6dbef"),
        "el": (6.1, 3.3, f"mean pool, linear\nE_L ({embed_dim}-d)", "#6baed6"),
        "view": (0.1, 0.5, view, "#eeeeee"),
        "cnn": (2.1, 0.5, cnn, "#c7e9c0"),
        "film": (6.1, 1.9, "match map + FiLM\n(E_L scores cells,\nscales, shifts)", "#fdd0a2"),
        "gru": (8.1, 1.9, "GRU memory\n+ policy: 6 actions", "#fdae6b"),
    }
    for x, y, text, color in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), 1.8, 0.9, boxstyle="round,pad=0.05", fc=color, ec="#555555"))
        ax.text(x + 0.9, y + 0.45, text, ha="center", va="center", fontsize=8.5)
    arrows = [("words", "tok"), ("tok", "tf"), ("tf", "el"), ("view", "cnn"), ("cnn", "film"), ("film", "gru")]
    for a, b in arrows:
        xa, ya = boxes[a][0] + 1.85, boxes[a][1] + 0.45
        xb, yb = boxes[b][0] - 0.05, boxes[b][1] + 0.45
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 1.4})
    ax.annotate("", xy=(7.0, 2.85), xytext=(7.0, 3.25), arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 1.4})
    ax.text(6.1 + 0.9, 4.4, "read out for chapters 4-6", ha="center", fontsize=8.5, color="#08519c", style="italic")
    notes = [
        (3.05, 2.9, f"language: {counts['language']:,}"),
        (3.05, 0.15, f"vision: {counts['vision']:,}"),
        (7.0, 1.55, f"fusion: {counts['fusion']:,}"),
        (9.0, 1.25, f"memory + policy: {counts['memory'] + counts['policy']:,}"),
    ]
    for x, y, text in notes:
        ax.text(x, y, text + " params", ha="center", fontsize=8, color="#444444")
    ax.set_title(f"The agent: {counts['total']:,} trainable parameters", fontsize=11)
    plt.close(fig)
    return fig


def epoch_axis(epochs: list[int]) -> alt.X:
    """An x encoding of whole epochs: integer ticks only (at most about ten of them)."""
    ticks = sorted(set(int(e) for e in epochs))
    step = max(1, -(-len(ticks) // 10))
    return alt.X(
        "epoch:Q",
        scale=alt.Scale(domain=[ticks[0], ticks[-1]], nice=False),
        axis=alt.Axis(values=ticks[::step], format="d"),
    )


def curve_panels(
    df: Any, panels: list[tuple[str, str, dict[str, str] | None]], title: str, description: str
) -> alt.HConcatChart:
    """Line charts side by side, one per metric, each with its own colour legend, so that the
    series of one panel (train / validation) never share a legend with another's (the tasks).

    ``df`` has columns ``run, epoch, metric, series, value``; ``panels``: (metric, legend title,
    colours of its series or None for a single series). Runs differ by dash and point shape."""
    many_runs = df["run"].nunique() > 1
    charts = []
    for metric, legend_title, colors in panels:
        part = df[df["metric"] == metric]
        if colors:
            color = alt.Color(
                "series:N",
                title=legend_title,
                legend=alt.Legend(orient="bottom", direction="vertical"),
                scale=alt.Scale(domain=list(colors), range=list(colors.values())),
            )
        else:
            color = alt.value("#4c78a8")
        enc: dict[str, Any] = {
            "x": epoch_axis(list(df["epoch"])),
            "y": alt.Y("value:Q", title=None),
            "color": color,
            "tooltip": ["run", "epoch", "series", alt.Tooltip("value:Q", format=".3f")],
        }
        if many_runs:
            enc["strokeDash"] = alt.StrokeDash("run:N", legend=None)
            enc["shape"] = alt.Shape("run:N", title="run", legend=alt.Legend(orient="bottom"))
        chart = alt.Chart(part, title=metric).mark_line(point=True).encode(**enc)
        charts.append(chart.properties(width=165, height=160))
    return (
        alt.hconcat(*charts)
        .resolve_scale(color="independent", y="independent")
        .properties(title=title, description=description)
    )


def training_curves(histories: dict[str, Any]) -> alt.HConcatChart:
    """Training and validation loss, validation accuracy and success per task against epochs, per run."""
    import pandas as pd

    from lva.instructions import TASK_NAMES

    rows = []
    for run, h in histories.items():
        for k, epoch in enumerate(h.epoch):
            rows.append({"run": run, "epoch": epoch, "metric": "loss", "series": "train", "value": h.train_loss[k]})
            rows.append({"run": run, "epoch": epoch, "metric": "loss", "series": "validation", "value": h.val_loss[k]})
            rows.append(
                {
                    "run": run,
                    "epoch": epoch,
                    "metric": "validation accuracy",
                    "series": "validation",
                    "value": h.val_accuracy[k],
                }
            )
            for task, value in h.success[k].items():
                rows.append(
                    {
                        "run": run,
                        "epoch": epoch,
                        "metric": "success on fresh episodes",
                        "series": TASK_NAMES[task],
                        "value": value,
                    }
                )
    panels = [
        ("loss", "loss on", {"train": "#4c78a8", "validation": "#e45756"}),
        ("validation accuracy", "", None),
        ("success on fresh episodes", "task", {TASK_NAMES[t]: c for t, c in TASK_COLORS.items()}),
    ]
    return curve_panels(
        pd.DataFrame(rows),
        panels,
        "Behavioural cloning",
        "Line charts against epochs: training and validation loss, validation accuracy of the "
        "expert's next action, and success per task on fresh episodes.",
    )


def filmstrip(record: dict[str, Any], max_frames: int = 8) -> Any:
    """Frames of one recorded episode (see :func:`lva.evaluate.rollout` with ``record=True``)."""
    import matplotlib.pyplot as plt

    from lva.env import ACTION_NAMES

    frames, actions = record["frames"], record["actions"]
    idx = np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)
    fig, axes = plt.subplots(1, len(idx), figsize=(1.7 * len(idx), 2.2), squeeze=False)
    for ax, i in zip(axes[0], idx):
        ax.imshow(frames[i])
        ax.set_title(f"t={i}" + (f" {ACTION_NAMES[actions[i]]}" if i < len(actions) else " end"), fontsize=8)
        ax.axis("off")
    verdict = "success" if record["success"] else "failure"
    fig.suptitle(
        f"“{record['instruction']}”: {verdict} in {record['steps']} steps (expert: {record['expert_steps']})",
        fontsize=10,
    )
    fig.tight_layout()
    plt.close(fig)
    return fig
