"""The continuous-training pipeline, defined once for every orchestrator.

ExampleGen ingests one span per run, StatisticsGen profiles it, the curated schema
(ImportSchemaGen) or an inferred one (SchemaGen) validates it. Every step is a container step
on Kubeflow: no TFX Resolver (open-source KFP cannot run them) and no ExampleGen driver hook.
Earlier work is found where every orchestrator can reach it: the span index (where each span's
examples are) and the serving folder (the served model, the baseline and warm-start base).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2

# Direct imports rather than `tfx.v1`, which also loads the Google Cloud extensions (~8 s).
from tfx.components import ExampleValidator, SchemaGen, Trainer
from tfx.orchestration import data_types
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import trainer_pb2

from ctpipe import models
from ctpipe.common import features
from ctpipe.components.concept_drift.component import ConceptDrift
from ctpipe.components.curated_schema.component import ImportSchemaGen
from ctpipe.components.evaluator.component import ServedBaselineEvaluator
from ctpipe.components.example_gen.component import SPAN_FOLDER_PATTERN, ExampleGen
from ctpipe.components.infra_validation.component import InfraValidation
from ctpipe.components.pusher.component import Pusher
from ctpipe.components.served_model.component import ServedModel
from ctpipe.components.span_window.component import SpanWindow
from ctpipe.components.statistics_gen.component import StatisticsGen
from ctpipe.components.validation_gate.component import ValidationGate
from ctpipe.models.options import to_custom_config
from ctpipe.pipeline.config import PipelineConfig

RUN_FN = "ctpipe.models.trainer.run_fn"
# Slices reported by the Evaluator: payment type drives tipping (cash tips are not recorded);
# the hour shows whether the model holds across the time of day.
SLICE_FEATURES = ("payment_type", "trip_start_hour")
# Steps that read state outside the artifact store (data folder, serving folder): their cache
# key holds a snapshot of it with LocalDagRunner; orchestrators without custom drivers must not
# cache them (pipeline/kubeflow/runner.py).
OUTSIDE_STATE_STEPS = ("ExampleGen", "SpanWindow", "ServedModel")


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """AUC gates the push: an absolute floor and no more than a small loss vs. the baseline."""
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.max_auc_regression}),
    )
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default",
                                    label_key=features.LABEL,
                                    prediction_key=features.PREDICTION_KEY)],
        slicing_specs=[tfma.SlicingSpec()] + [
            tfma.SlicingSpec(feature_keys=[name]) for name in SLICE_FEATURES],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[
                # Overall only: some slices (cash trips) have no positives and no AUC.
                tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                             threshold=auc_threshold)]),
            tfma.MetricConfig(class_name="BinaryAccuracy"),
            tfma.MetricConfig(class_name="Calibration"),
            tfma.MetricConfig(class_name="CalibrationPlot"),
        ])],
    )


@dataclasses.dataclass(frozen=True)
class RunParameters:
    """Values a user may set per run instead of per compile (runtime parameters of an
    orchestrator such as Kubeflow); None takes the value from the configuration."""

    data_root: data_types.RuntimeParameter | None = None
    # The span this run ingests (0: the newest present).
    span: data_types.RuntimeParameter | None = None
    # A JSON TrainArgs, e.g. {"num_steps": 600}: TFX passes train_args to the Trainer whole.
    train_args: data_types.RuntimeParameter | None = None


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
    run_parameters: RunParameters = RunParameters(),
    last_steps: Callable[[dict[str, Any]], list[Any]] = lambda steps: [],
) -> tfx_pipeline.Pipeline:
    """ExampleGen (one span) -> StatisticsGen -> schema validation (stops bad data) ->
    SpanWindow -> Trainer (warm start from the served model) -> Evaluator (vs. the served
    model) + infra validation -> Pusher. `last_steps` gets the steps by id and returns steps an
    orchestrator adds after them (Kubeflow: the tracking step)."""
    data_root = run_parameters.data_root or config.data_root
    example_gen = ExampleGen(input_base=data_root,
                             span=run_parameters.span or config.span,
                             file_format=config.data_format).with_id("ExampleGen")
    if config.schema_path:
        schema_gen = ImportSchemaGen(schema_file=config.schema_path,
                                     schema_text=config.curated_schema)
        statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"],
                                       schema=schema_gen.outputs["schema"])
    else:
        statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"],
                               infer_feature_shape=True)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    span_window = SpanWindow(
        examples=example_gen.outputs["examples"], data_root=data_root,
        span_pattern=f"{SPAN_FOLDER_PATTERN}/*.{config.data_format}",
        file_format=config.data_format, span_index=config.span_index_uri,
        curated_schema=config.curated_schema, window=config.window,
        eval_newest_examples=config.eval_newest_examples,
        eval_sample_examples=config.eval_sample_examples,
        sample_statistics_examples=config.statistics_sample_examples).with_id("SpanWindow")
    validation_gate = ValidationGate(
        examples=span_window.outputs["window_examples"],
        anomalies=example_validator.outputs["anomalies"], schema=schema_gen.outputs["schema"],
        drift_policy=config.drift_policy,
        sample_statistics_examples=config.statistics_sample_examples)
    served_model = ServedModel(examples=span_window.outputs["window_examples"],
                               serving_model_dir=config.serving_model_dir).with_id("ServedModel")
    # Before training on it: how the served model does on the newly arrived span.
    concept_drift = ConceptDrift(model=served_model.outputs["model"],
                                 examples=span_window.outputs["window_examples"],
                                 drift_report=validation_gate.outputs["drift_report"],
                                 max_auc_drop=config.concept_drift_max_auc_drop)
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=span_window.outputs["window_examples"],
        schema=validation_gate.outputs["validated_schema"],
        base_model=served_model.outputs["model"],
        train_args=(run_parameters.train_args
                    or trainer_pb2.TrainArgs(num_steps=config.train_steps)),
        eval_args=trainer_pb2.EvalArgs(num_steps=config.eval_steps),
        # The code version is in the cache key: editing models/ re-runs the Trainer.
        custom_config=to_custom_config(config.trainer_options(), models.code_version()),
    )
    evaluator = ServedBaselineEvaluator(
        examples=span_window.outputs["eval_examples"],
        model=trainer.outputs["model"],
        baseline_model=served_model.outputs["model"],
        eval_config=eval_config(config),
    ).with_id("Evaluator")
    # The candidate must load and answer in a TF Serving-compatible server before it is pushed.
    infra_validation = InfraValidation(
        model=trainer.outputs["model"], examples=span_window.outputs["eval_examples"],
        model_name=config.model_name)
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validation.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        window_statistics=validation_gate.outputs["window_statistics"],
        serving_model_dir=config.serving_model_dir, model_name=config.model_name,
        rollout=config.rollout, model_config=config.serving_model_config,
    ).with_id("Pusher")
    steps = [example_gen, schema_gen, statistics_gen, example_validator, span_window,
             validation_gate, served_model, concept_drift, trainer, evaluator, infra_validation,
             pusher]
    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=steps + last_steps({step.id: step for step in steps}),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )
