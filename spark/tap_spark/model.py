"""The behaviour model: K-Means on the log of session duration and pages viewed.

Why not the seed's model (K-Means on raw duration)? A handful of abandoned tabs, sessions of
hours, pull one of the two centres to themselves, so nearly every real visit lands in the other
cluster. This model

1. clips duration at 4 hours and pages at 200 (winsorising the abandoned-tab tail),
2. takes log1p of both (the split between a two-minute and a twenty-minute visit is a ratio),
3. standardises both features, and
4. runs K-Means with k=2.

The cluster whose centre has the shorter duration (in seconds, transforms inverted) is
"Impulsive"; cluster indices carry no meaning of their own.

On disk, a model directory holds ``pipeline/`` (the Spark PipelineModel) and ``tap_model.json``
(metadata: version, training rows, centres in seconds and pages, which cluster is Impulsive, the
duration boundary, silhouette, training accuracy, Spark version).

    meta = train("training_data/training_data.csv", ".run/model")
    model = load(".run/model")
    labelled = model.label(orders)   # + purchase_behaviour, behaviour_distance, model_version
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyspark
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType

from tapstack import contracts
from tapstack.contracts import ROOT

DEFAULT_TRAINING_CSV = ROOT / "training_data" / "training_data.csv"
DEFAULT_MODEL_DIR = ROOT / ".run" / "model"
METADATA_FILE = "tap_model.json"
PIPELINE_DIR = "pipeline"

IMPULSIVE = "Impulsive"
REASONED = "Reasoned"
FEATURES = ["duration_session", "pages_viewed"]
# Bump when the feature transforms change: older saved models are then refused by load().
FEATURE_VERSION = 1
DURATION_CLIP_SECONDS = 4 * 3600
PAGES_CLIP = 200
K = 2
KMEANS_SEED = 2026
SEED_MODEL_SEED = 1  # the original design's KMeans(k=2, seed=1)
EVALUATION_SEED = 4242  # differs from the training data's simulator seed (2026)

# Output columns.
BEHAVIOUR_COL = "purchase_behaviour"
DISTANCE_COL = "behaviour_distance"
MARGIN_COL = "behaviour_margin"
CONFIDENCE_COL = "label_confidence"
VERSION_COL = "model_version"

# Working columns, dropped before label() returns.
_LOG_DURATION = "__tap_log_duration"
_LOG_PAGES = "__tap_log_pages"
_FEATURES = "__tap_features"
_SCALED = "__tap_scaled"
_CLUSTER = "__tap_cluster"
_WORK_COLUMNS = [_LOG_DURATION, _LOG_PAGES, _FEATURES, _SCALED, _CLUSTER]

_FEATURE_SQL = (
    "SELECT *, "
    "log1p(least(greatest(coalesce(CAST(duration_session AS DOUBLE), 0D), 0D), "
    f"{float(DURATION_CLIP_SECONDS)}D)) AS `{_LOG_DURATION}`, "
    "log1p(least(greatest(coalesce(CAST(pages_viewed AS DOUBLE), 1D), 1D), "
    f"{float(PAGES_CLIP)}D)) AS `{_LOG_PAGES}` "
    "FROM __THIS__"
)


class ModelError(RuntimeError):
    """The behaviour model cannot be trained, saved or loaded; the message says why."""


# -- helpers ----------------------------------------------------------------------------------


def _spark(spark: SparkSession | None = None) -> SparkSession:
    if spark is not None:
        return spark
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from tap_spark.session import local_session

    return local_session("tap-behaviour-model")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_training_csv(spark: SparkSession, csv_path: Path, need_pages: bool) -> DataFrame:
    if not csv_path.is_file():
        raise ModelError(f"training data {csv_path} does not exist")
    raw = spark.read.csv(str(csv_path), header=True, inferSchema=False)
    required = FEATURES if need_pages else ["duration_session"]
    missing = [name for name in required if name not in raw.columns]
    if missing:
        raise ModelError(
            f"training data {csv_path} lacks column(s) {', '.join(missing)} "
            f"(has {', '.join(raw.columns) or 'none'})"
        )
    columns = [F.col("duration_session").cast(LongType()).alias("duration_session")]
    if "pages_viewed" in raw.columns:
        columns.append(F.col("pages_viewed").cast("int").alias("pages_viewed"))
    if "behaviour" in raw.columns:
        columns.append(F.trim(F.col("behaviour")).alias("behaviour"))
    df = raw.select(*columns).where(
        F.col("duration_session").isNotNull()
        & (F.col("pages_viewed").isNotNull() if need_pages else F.lit(True))
    )
    return df


def _pipeline(seed: int) -> Pipeline:
    return Pipeline(
        stages=[
            SQLTransformer(statement=_FEATURE_SQL),
            VectorAssembler(inputCols=[_LOG_DURATION, _LOG_PAGES], outputCol=_FEATURES),
            StandardScaler(inputCol=_FEATURES, outputCol=_SCALED, withMean=True, withStd=True),
            KMeans(
                k=K, seed=seed, featuresCol=_SCALED, predictionCol=_CLUSTER, maxIter=50, tol=1e-6
            ),
        ]
    )


@dataclass(frozen=True)
class _Geometry:
    """What label() needs from a fitted pipeline: scaler parameters and centres."""

    mean: tuple[float, float]
    std: tuple[float, float]
    centres: tuple[tuple[float, float], ...]  # in the scaled space

    @classmethod
    def of(cls, model: PipelineModel) -> _Geometry:
        scaler, kmeans = model.stages[2], model.stages[3]
        mean = tuple(float(v) for v in scaler.mean.toArray())
        std = tuple(float(v) for v in scaler.std.toArray())
        centres = tuple(tuple(float(v) for v in c) for c in kmeans.clusterCenters())
        return cls(mean=mean, std=std, centres=centres)

    def unscaled(self, centre: tuple[float, float]) -> tuple[float, float]:
        """A centre as (duration seconds, pages), inverting scaling and log1p."""
        logs = [c * s + m for c, s, m in zip(centre, self.std, self.mean, strict=True)]
        return math.expm1(logs[0]), math.expm1(logs[1])

    def scaled_column(self, index: int, column: str) -> Column:
        if self.std[index] == 0.0:  # Spark's scaler outputs 0 for a constant feature
            return F.lit(0.0)
        return (F.col(column) - F.lit(self.mean[index])) / F.lit(self.std[index])

    def _centre_distances(self) -> list[Column]:
        """Euclidean distance, in the scaled space, from the row to each centre."""
        x = self.scaled_column(0, _LOG_DURATION)
        y = self.scaled_column(1, _LOG_PAGES)
        return [
            F.sqrt(F.pow(x - F.lit(cx), 2) + F.pow(y - F.lit(cy), 2)) for cx, cy in self.centres
        ]

    def distance_column(self) -> Column:
        """Euclidean distance, in the scaled space, from the row to its chosen centre."""
        distance = None
        for index, value in enumerate(self._centre_distances()):
            distance = (
                F.when(F.col(_CLUSTER) == index, value)
                if distance is None
                else distance.when(F.col(_CLUSTER) == index, value)
            )
        return distance.cast(DoubleType())

    def margin_column(self) -> Column:
        """How clearly the row belongs to its centre: the distance to the other centre less
        the distance to its own, over the distance between the centres (scaled space). 0 on
        the boundary; never above 1 (the triangle inequality), reached on the line through
        both centres, at or beyond its own."""
        if len(self.centres) != 2:
            raise ModelError(f"a margin needs two centres, not {len(self.centres)}")
        a, b = self._centre_distances()
        return (F.abs(a - b) / F.lit(math.dist(*self.centres))).cast(DoubleType())


def confidence_column(margin: Column) -> Column:
    """ "low" for a label whose margin is below [model] low_confidence_margin_below, else
    "high" (the dashboard's share of low-confidence labels)."""
    below = contracts.settings()["model"]["low_confidence_margin_below"]
    return F.when(margin < F.lit(below), F.lit("low")).otherwise(F.lit("high"))


def _impulsive_cluster(geometry: _Geometry) -> int:
    if len(geometry.centres) < K:
        raise ModelError(
            f"K-Means found {len(geometry.centres)} centre(s), not {K}: the training data has "
            "too few distinct (duration, pages) points to tell two behaviours apart"
        )
    seconds = [geometry.unscaled(c)[0] for c in geometry.centres]
    a, b = geometry.centres[0], geometry.centres[1]
    if math.dist(a, b) < 1e-9 or math.isclose(seconds[0], seconds[1], rel_tol=1e-9):
        raise ModelError(
            "the two cluster centres coincide in duration; the training data does not separate "
            "two behaviours"
        )
    return min(range(K), key=lambda i: seconds[i])


def _label_column(impulsive_cluster: int) -> Column:
    return F.when(F.col(_CLUSTER) == impulsive_cluster, F.lit(IMPULSIVE)).otherwise(F.lit(REASONED))


def _accuracy(labelled: DataFrame, predicted: str = BEHAVIOUR_COL) -> dict[str, Any] | None:
    """Accuracy and confusion counts (truth -> predicted) against a 'behaviour' column."""
    if "behaviour" not in labelled.columns:
        return None
    rows = (
        labelled.where(F.col("behaviour").isin(IMPULSIVE, REASONED))
        .groupBy("behaviour", predicted)
        .count()
        .collect()
    )
    confusion = {truth: {IMPULSIVE: 0, REASONED: 0} for truth in (IMPULSIVE, REASONED)}
    for row in rows:
        confusion[row["behaviour"]][row[predicted]] += int(row["count"])
    total = sum(sum(v.values()) for v in confusion.values())
    right = confusion[IMPULSIVE][IMPULSIVE] + confusion[REASONED][REASONED]
    return {
        "accuracy": right / total if total else None,
        "rows": total,
        "confusion": confusion,
    }


def _find_boundary(
    spark: SparkSession, pipeline: PipelineModel, impulsive_cluster: int, pages: int
) -> float:
    """Duration (s) where the model's label flips, pages held fixed, from the model itself.

    A k-section search on the fitted pipeline's own predictions: each round scores a grid of
    durations in one Spark job and narrows to the cell where the label changes. Along a line in
    feature space a two-centre K-Means flips at most once, so one cell brackets the boundary.
    """
    low, high = 0.0, float(DURATION_CLIP_SECONDS)
    steps = 400

    def impulsive_at(durations: list[float]) -> list[bool]:
        frame = spark.createDataFrame(
            [(i, d, pages) for i, d in enumerate(durations)],
            "i INT, duration_session DOUBLE, pages_viewed INT",
        )
        rows = pipeline.transform(frame).select("i", _CLUSTER).collect()
        flags = {row["i"]: row[_CLUSTER] == impulsive_cluster for row in rows}
        return [flags[i] for i in range(len(durations))]

    ends = impulsive_at([low, high])
    if ends[0] == ends[1] or not ends[0]:
        raise ModelError(
            f"the label does not flip from Impulsive to Reasoned between 0 s and "
            f"{DURATION_CLIP_SECONDS} s at {pages} pages; the clusters do not split on duration"
        )
    while high - low > 1e-3:
        grid = [low + (high - low) * j / steps for j in range(steps + 1)]
        flags = impulsive_at(grid)
        flip = next(j for j in range(1, len(flags)) if not flags[j])
        low, high = grid[flip - 1], grid[flip]
    return (low + high) / 2.0


# -- training ---------------------------------------------------------------------------------


def train(
    csv_path: str | Path,
    model_dir: str | Path,
    *,
    seed: int = KMEANS_SEED,
    source: dict[str, Any] | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """Train on a CSV (duration_session, pages_viewed[, behaviour]); save; return the metadata.
    ``source`` says where the CSV's rows came from (e.g. the shop's index and window).

    The model directory is replaced as a whole (written beside it, then renamed), so a reader
    never sees half a model.
    """
    started = time.monotonic()
    spark = _spark(spark)
    csv_path = Path(csv_path).resolve()
    model_dir = Path(model_dir).resolve()
    data = _read_training_csv(spark, csv_path, need_pages=True).cache()
    try:
        rows = data.count()
        if rows < K:
            raise ModelError(f"training data {csv_path} has {rows} usable row(s); need >= {K}")
        pipeline = _pipeline(seed).fit(data)
        geometry = _Geometry.of(pipeline)
        impulsive = _impulsive_cluster(geometry)
        scored = pipeline.transform(data).withColumn(BEHAVIOUR_COL, _label_column(impulsive))
        scored = scored.cache()
        try:
            sizes = {r[_CLUSTER]: r["count"] for r in scored.groupBy(_CLUSTER).count().collect()}
            if len(sizes) < K:
                raise ModelError("every training row fell into one cluster")
            silhouette = ClusteringEvaluator(featuresCol=_SCALED, predictionCol=_CLUSTER).evaluate(
                scored
            )
            quality = _accuracy(scored)
        finally:
            scored.unpersist()
        reference = _drift_reference(data)
    finally:
        data.unpersist()

    centres = []
    for index, centre in enumerate(geometry.centres):
        seconds, pages = geometry.unscaled(centre)
        centres.append(
            {
                "cluster": index,
                "behaviour": IMPULSIVE if index == impulsive else REASONED,
                "duration_seconds": round(seconds, 3),
                "pages_viewed": round(pages, 3),
                "scaled": [round(v, 12) for v in centre],
                "training_rows": int(sizes.get(index, 0)),
            }
        )
    # Pages held at the midpoint of the two centres in the model's own (log) feature space,
    # rounded to the whole pages real rows have.
    log_pages_mid = sum(math.log1p(c["pages_viewed"]) for c in centres) / 2
    boundary_pages = max(1, round(math.expm1(log_pages_mid)))
    boundary = _find_boundary(spark, pipeline, impulsive, boundary_pages)

    sha = _file_sha256(csv_path)
    created = datetime.now(UTC)
    try:
        training_data = str(csv_path.relative_to(ROOT))
    except ValueError:
        training_data = str(csv_path)
    metadata: dict[str, Any] = {
        "version": f"behaviour-{created:%Y%m%d}-{sha[:8]}",
        "created": created.isoformat(timespec="seconds"),
        "spark_version": pyspark.__version__,
        "feature_version": FEATURE_VERSION,
        "features": list(FEATURES),
        "transforms": {
            "duration_clip_seconds": DURATION_CLIP_SECONDS,
            "pages_clip": PAGES_CLIP,
            "log": "log1p",
            "scaler": "standard (mean 0, std 1)",
        },
        "k": K,
        "seed": seed,
        "training_data": training_data,
        "training_data_sha256": sha,
        "training_source": source or {"csv": training_data},
        "training_rows": rows,
        "centres": centres,
        "impulsive_cluster": impulsive,
        "scaler": {"mean": list(geometry.mean), "std": list(geometry.std)},
        "boundary": {
            "duration_seconds": round(boundary, 3),
            "pages_viewed": boundary_pages,
            "rule": "duration at which the label flips from Impulsive to Reasoned, pages held "
            "at the centres' midpoint in log space (rounded)",
        },
        "silhouette": round(float(silhouette), 6),
        "accuracy": None if quality is None else round(quality["accuracy"], 6),
        "confusion": None if quality is None else quality["confusion"],
        "drift_reference": reference,
        "training_seconds": None,
    }
    metadata["training_seconds"] = round(time.monotonic() - started, 2)
    _save(pipeline, metadata, model_dir)
    return metadata


def _drift_reference(data: DataFrame) -> dict[str, dict[str, list[float]]]:
    """Per raw feature, the training data's decile edges and its rows' share per bin: what
    `tap model drift` measures recent orders against (tapstack/model_drift.py)."""
    from pyspark.ml.feature import Bucketizer

    from tapstack import model_drift

    reference = {}
    total = data.count()
    for feature in FEATURES:
        column = data.select(F.col(feature).cast(DoubleType()).alias(feature))
        quantiles = column.approxQuantile(feature, [q / 10 for q in range(1, 10)], 0.0)
        edges = model_drift.distinct_edges(quantiles)
        splits = [-math.inf, *edges, math.inf]
        buckets = Bucketizer(splits=splits, inputCol=feature, outputCol="bin").transform(column)
        counts = {int(r["bin"]): r["count"] for r in buckets.groupBy("bin").count().collect()}
        reference[feature] = {
            "edges": list(edges),
            "shares": [counts.get(i, 0) / total for i in range(len(edges) + 1)],
        }
    return reference


def _save(pipeline: PipelineModel, metadata: dict[str, Any], model_dir: Path) -> None:
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = model_dir.with_name(f".{model_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    retired = model_dir.with_name(f".{model_dir.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        pipeline.write().overwrite().save(str(staging / PIPELINE_DIR))
        (staging / METADATA_FILE).write_text(
            json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if model_dir.exists():
            model_dir.rename(retired)
        staging.rename(model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


# -- loading and labelling --------------------------------------------------------------------


class BehaviourModel:
    """A loaded behaviour model. ``label(df)`` works on batch and streaming DataFrames."""

    def __init__(self, pipeline: PipelineModel, metadata: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.metadata = metadata
        self.geometry = _Geometry.of(pipeline)
        self.impulsive_cluster = _impulsive_cluster(self.geometry)
        if self.impulsive_cluster != metadata.get("impulsive_cluster"):
            raise ModelError(
                "metadata names cluster "
                f"{metadata.get('impulsive_cluster')} Impulsive but the saved pipeline's "
                f"shorter centre is cluster {self.impulsive_cluster}: the files do not belong "
                "together"
            )

    @property
    def version(self) -> str:
        return self.metadata["version"]

    def label(self, df: DataFrame) -> DataFrame:
        """df (with duration_session and pages_viewed) + purchase_behaviour, behaviour_distance,
        behaviour_margin, label_confidence, model_version. Every other column passes through
        unchanged; no working column is left.

        A stateless, per-row transform (no aggregation, no Python UDF), so it runs on a
        streaming DataFrame as it does on a batch one.
        """
        missing = [name for name in FEATURES if name not in df.columns]
        if missing:
            raise ModelError(f"cannot label: the DataFrame lacks {', '.join(missing)}")
        clash = [name for name in _WORK_COLUMNS if name in df.columns]
        if clash:
            raise ModelError(f"cannot label: the DataFrame already has column(s) {clash}")
        scored = self.pipeline.transform(df)
        return (
            scored.withColumn(BEHAVIOUR_COL, _label_column(self.impulsive_cluster))
            .withColumn(DISTANCE_COL, self.geometry.distance_column())
            .withColumn(MARGIN_COL, self.geometry.margin_column())
            .withColumn(CONFIDENCE_COL, confidence_column(F.col(MARGIN_COL)))
            .withColumn(VERSION_COL, F.lit(self.version))
            .drop(*_WORK_COLUMNS)
        )


def _compatible(metadata: dict[str, Any], where: Path) -> None:
    saved = str(metadata.get("spark_version", ""))
    if saved.split(".")[:2] != pyspark.__version__.split(".")[:2]:
        raise ModelError(
            f"model in {where} was saved by Spark {saved or '?'}; this is Spark "
            f"{pyspark.__version__}. Retrain it: tap model train --out {where}"
        )
    if metadata.get("feature_version") != FEATURE_VERSION or metadata.get("features") != FEATURES:
        raise ModelError(
            f"model in {where} uses feature version {metadata.get('feature_version')} "
            f"{metadata.get('features')}; this code expects {FEATURE_VERSION} {FEATURES}. "
            f"Retrain it: tap model train --out {where}"
        )
    for key in ("version", "impulsive_cluster"):
        if key not in metadata:
            raise ModelError(f"model metadata in {where} lacks '{key}'")


def load(model_dir: str | Path, *, spark: SparkSession | None = None) -> BehaviourModel:
    """Load a trained model; ModelError with the reason when it is missing or incompatible."""
    model_dir = Path(model_dir).resolve()
    if not model_dir.is_dir():
        raise ModelError(
            f"no behaviour model at {model_dir}: train one with `tap model train --out {model_dir}`"
        )
    meta_path = model_dir / METADATA_FILE
    if not meta_path.is_file():
        raise ModelError(f"{model_dir} has no {METADATA_FILE}: not a TAP behaviour model")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {meta_path}: {error}") from error
    _compatible(metadata, model_dir)
    pipeline_path = model_dir / PIPELINE_DIR
    if not pipeline_path.is_dir():
        raise ModelError(f"{model_dir} has no {PIPELINE_DIR}/ directory (the Spark pipeline)")
    _spark(spark)
    try:
        pipeline = PipelineModel.load(str(pipeline_path))
    except Exception as error:  # Spark raises several Java-backed error types
        raise ModelError(f"cannot load the Spark pipeline in {pipeline_path}: {error}") from error
    if len(pipeline.stages) != 4:
        raise ModelError(f"{pipeline_path} is not a TAP behaviour pipeline (4 stages expected)")
    return BehaviourModel(pipeline, metadata)


# -- the seed's model, for comparison ---------------------------------------------------------


@dataclass
class SeedModel:
    """The original design's model: KMeans(k=2, seed=1) on raw duration_session."""

    pipeline: PipelineModel
    centres_seconds: list[float]
    impulsive_cluster: int

    def label(self, df: DataFrame) -> DataFrame:
        scored = self.pipeline.transform(df)
        return scored.withColumn(BEHAVIOUR_COL, _label_column(self.impulsive_cluster)).drop(
            _FEATURES, _CLUSTER
        )


def train_seed_model(csv_path: str | Path, *, spark: SparkSession | None = None) -> SeedModel:
    """Fit the seed's model: VectorAssembler(duration_session) -> KMeans(k=2, seed=1)."""
    spark = _spark(spark)
    data = _read_training_csv(spark, Path(csv_path).resolve(), need_pages=False)
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=["duration_session"], outputCol=_FEATURES),
            KMeans(k=K, seed=SEED_MODEL_SEED, featuresCol=_FEATURES, predictionCol=_CLUSTER),
        ]
    ).fit(data)
    centres = [float(c[0]) for c in pipeline.stages[-1].clusterCenters()]
    if len(centres) < K or centres[0] == centres[1]:
        raise ModelError("the seed's model found fewer than two distinct centres")
    return SeedModel(pipeline, centres, min(range(K), key=lambda i: centres[i]))


# -- evaluation -------------------------------------------------------------------------------


def held_out_frame(spark: SparkSession, n: int, seed: int) -> DataFrame:
    """n simulated orders (a seed other than the training data's) with their ground truth."""
    from tapstack.simulator import Simulator

    simulator = Simulator(seed=seed, start=datetime(2026, 6, 1))
    rows = [
        (o.event["order_id"], o.event["duration_session"], o.event["pages_viewed"], o.behaviour)
        for o in simulator.orders(n)
    ]
    schema = "order_id BIGINT, duration_session BIGINT, pages_viewed INT, behaviour STRING"
    return spark.createDataFrame(rows, schema)


def labelled_csv_frame(spark: SparkSession, csv_path: str | Path) -> DataFrame:
    """Orders with ground truth from any CSV: duration_session, pages_viewed and a
    ``behaviour`` column holding Impulsive or Reasoned (other rows are not judged)."""
    path = Path(csv_path).resolve()
    frame = _read_training_csv(spark, path, need_pages=True)
    if "behaviour" not in frame.columns:
        raise ModelError(f"evaluation data {path} has no 'behaviour' column (the ground truth)")
    judged = frame.where(F.col("behaviour").isin(IMPULSIVE, REASONED))
    if judged.limit(1).count() == 0:
        raise ModelError(f"evaluation data {path} has no row labelled {IMPULSIVE} or {REASONED}")
    return judged


def evaluate(
    model_dir: str | Path,
    n: int = 5000,
    seed: int = EVALUATION_SEED,
    *,
    data_path: str | Path | None = None,
    csv_path: str | Path | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """Label held-out orders with our model and with the seed's; compare.

    The orders are ``data_path``'s (any CSV with ground truth, see labelled_csv_frame) or, by
    default, n simulated orders of another seed than the training data's. The seed's model is
    fitted on the same training CSV as ours (``csv_path``, default: the one named in our
    metadata).
    """
    spark = _spark(spark)
    model = load(model_dir, spark=spark)
    if csv_path is None:
        named = Path(model.metadata.get("training_data") or DEFAULT_TRAINING_CSV)
        csv_path = named if named.is_absolute() else ROOT / named
    if data_path is None:
        frame = held_out_frame(spark, n, seed).cache()
    else:
        frame = labelled_csv_frame(spark, data_path).cache()
    try:
        ours = _accuracy(model.label(frame))
        seed_model = train_seed_model(csv_path, spark=spark)
        theirs = _accuracy(seed_model.label(frame))
    finally:
        frame.unpersist()
    return {
        "rows": ours["rows"],
        "source": str(data_path) if data_path is not None else f"simulator seed {seed}",
        "seed": seed if data_path is None else None,
        "model_version": model.version,
        "model": ours,
        "seed_model": {**theirs, "centres_seconds": seed_model.centres_seconds},
        "silhouette": model.metadata.get("silhouette"),
        "boundary": model.metadata.get("boundary"),
        "training_accuracy": model.metadata.get("accuracy"),
    }


def flip_share(first: BehaviourModel, second: BehaviourModel, frame: DataFrame) -> dict[str, Any]:
    """How many of frame's orders two model versions label differently: what a promotion of
    `second` over `first` would change in the behaviour split."""
    once = first.label(frame).select(*frame.columns, F.col(BEHAVIOUR_COL).alias("_first"))
    twice = second.label(once)
    changed = F.col("_first") != F.col(BEHAVIOUR_COL)
    row = twice.agg(F.count(F.lit(1)).alias("rows"), F.sum(changed.cast("int")).alias("n")).first()
    rows, flipped = int(row["rows"]), int(row["n"] or 0)
    return {"rows": rows, "flipped": flipped, "share": flipped / rows if rows else None}


def compare(
    first_dir: str | Path,
    second_dir: str | Path,
    n: int = 5000,
    seed: int = EVALUATION_SEED,
    *,
    data_path: str | Path | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """flip_share of two saved models on data_path's orders (duration_session, pages_viewed;
    no truth needed) or n held-out simulated ones."""
    spark = _spark(spark)
    first, second = load(first_dir, spark=spark), load(second_dir, spark=spark)
    if data_path is None:
        frame = held_out_frame(spark, n, seed)
    else:
        frame = _read_training_csv(spark, Path(data_path).resolve(), need_pages=True)
    return {**flip_share(first, second, frame), "first": first.version, "second": second.version}
