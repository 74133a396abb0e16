"""What a reviewer opens in an MLflow run: the persona report and the share history plot.

Frames in, Markdown or a matplotlib figure out; `fit_runs` hands them to MLflow.
"""

import matplotlib

matplotlib.use("Agg")  # no display on workers; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from dagster_project.markdown import markdown_table  # noqa: E402
from dagster_project.science.labelling import explanation_text  # noqa: E402

EVIDENCE_PER_PERSONA = 3


def persona_report(day: str, personas: pl.DataFrame, memories: pl.DataFrame) -> str:
    """Markdown: each persona by share, with its description, what distinguishes it, quality scores and top evidence.

    `personas` has the `personas` table's columns; `memories` maps memory_id to summary.
    """
    evidence = personas["evidence_memory_ids"].list.head(EVIDENCE_PER_PERSONA).explode().drop_nulls()
    shown = memories.filter(pl.col("memory_id").is_in(evidence.implode()))  # a range's memories, not a dict a day
    summaries = dict(zip(shown["memory_id"], shown["summary"], strict=True))
    ranked = personas.sort("share", "persona_id", descending=[True, False])
    table = markdown_table(
        ["id", "label", "share", "people", "quality", "cohesion", "held-out alignment", "held-out truthfulness",
         "coverage"],
        [
            [row["persona_id"], row["label"], f"{row['share']:.1%}", row["n_users"],
             *(f"{row[score]:.2f}" for score in ("quality", "cohesion", "evidence_alignment", "truthfulness", "coverage"))]
            for row in ranked.iter_rows(named=True)
        ],
    )
    lines = [f"# Personas as of {day}", "", table]
    for row in ranked.iter_rows(named=True):
        lines += ["", f"## {row['persona_id']}. {row['label']} ({row['share']:.1%})", "", row["description"], "",
                  f"Distinguished by: {explanation_text(row['explanation'])}", ""]
        lines += [
            f"- {summaries.get(memory_id, memory_id)}" for memory_id in row["evidence_memory_ids"][:EVIDENCE_PER_PERSONA]
        ]
    return "\n".join(lines) + "\n"


def share_history_figure(history: pl.DataFrame) -> Figure:
    """One line per persona id: its share on every model date (columns event_date, persona_id, label, share).

    A persona is named "id: latest label", since labels can change while the id stays and two
    personas can carry the same label. The margins are fixed, leaving the right 47% to the legend (labels
    of up to ~65 characters): `tight_layout` would draw the figure once more to measure it.
    """
    latest_labels = history.sort("event_date").group_by("persona_id").agg(pl.col("label").last())
    names = dict(zip(latest_labels["persona_id"], latest_labels["label"], strict=True))
    figure, axes = plt.subplots(figsize=(10, 5))
    axes.set_prop_cycle(color=plt.cm.tab20.colors)
    for (persona_id,), rows in history.sort("persona_id", "event_date").group_by("persona_id", maintain_order=True):
        axes.plot(rows["event_date"].to_list(), rows["share"].to_list(), marker="o", markersize=3,
                  label=f"{persona_id}: {names[persona_id]}")
    axes.set_xlabel("model date")
    axes.set_ylabel("share of window weight")
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_title("Persona shares over time")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.autofmt_xdate()  # rotates the dates and sets the bottom margin they need
    figure.subplots_adjust(left=0.09, right=0.53, top=0.93)
    return figure
