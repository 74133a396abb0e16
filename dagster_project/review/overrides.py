"""Human labels on persona ids, laid over the computed ones (pure: frames in, frames out).

A reviewer's label names a persona id, not a day: every fit that still has the id shows it,
while `computed_label` keeps what the model would have called the persona that day.
"""

import polars as pl

HUMAN = "human"
COMPUTED = "computed"
OVERRIDE_SCHEMA = {"persona_id": pl.Int64, "label": pl.String, "set_by": pl.String, "set_at": pl.Datetime("us")}


def apply_label_overrides(personas: pl.DataFrame, overrides: pl.DataFrame) -> pl.DataFrame:
    """`label` becomes the human label where one is set; `computed_label`, `label_source`
    (human | computed), `label_set_by` and `label_set_at` say what was replaced, by whom and when.

    overrides: the active override per persona id (columns of `OVERRIDE_SCHEMA`).
    """
    human = overrides.select(
        pl.col("persona_id").cast(personas.schema["persona_id"]),
        pl.col("label").alias("human_label"),
        pl.col("set_by").alias("label_set_by"),
        pl.col("set_at").alias("label_set_at"),
    )
    return (
        personas.with_columns(computed_label=pl.col("label"))
        .join(human, on="persona_id", how="left", maintain_order="left")
        .with_columns(
            label=pl.coalesce("human_label", "computed_label"),
            label_source=pl.when(pl.col("human_label").is_null()).then(pl.lit(COMPUTED)).otherwise(pl.lit(HUMAN)),
        )
        .drop("human_label")
    )
