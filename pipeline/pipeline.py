"""The continuous-training pipeline, defined once for every orchestrator."""
from __future__ import annotations

import dataclasses

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2

# Direct imports rather than `tfx.v1`, which also loads the Google Cloud extensions (~8 s).
from tfx.components import (Evaluator, ExampleValidator, Pusher, SchemaGen, StatisticsGen,
                            Trainer)
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base.executor_spec import BeamExecutorSpec
from tfx.dsl.components.common.resolver import Resolver, ResolverStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration import data_types
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2
from tfx.types import Channel, standard_artifacts

import models
from components.baseline import (LatestBlessedModelOfOtherExamplesStrategy,
                                 LatestBlessedOtherThanCandidateStrategy)
from components.infra_validation import InfraValidation
from components.validation_gate import ValidationGate
from components.window_example_gen import WindowCsvExecutor, window_custom_config
from models import features
from pipeline.config import PipelineConfig

RUN_FN = "models.trainer.run_fn"
SPAN_PATTERN = "span-{SPAN}/*.csv"
BASELINE_RESOLVER_ID = "latest_blessed_model_resolver"
WARM_START_RESOLVER_ID = "warm_start_model_resolver"
# Slices reported by the Evaluator: payment type drives tipping (cash tips are not recorded);
# the hour shows whether the model holds across the time of day.
SLICE_FEATURES = ("payment_type", "trip_start_hour")


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


def _latest_blessed_model(resolver_id: str, config: PipelineConfig,
                          local_strategy: type[ResolverStrategy], **local_inputs) -> Resolver:
    """A Resolver of the latest blessed model: TFX's LatestBlessedModelStrategy, or where the
    orchestrator allows custom strategies (`baseline_excludes_candidate`), `local_strategy`,
    which also leaves out the models that `local_inputs` rule out."""
    every_model = {"model": Channel(type=standard_artifacts.Model),
                   "model_blessing": Channel(type=standard_artifacts.ModelBlessing)}
    if config.baseline_excludes_candidate:
        return Resolver(strategy_class=local_strategy, **local_inputs,
                        **every_model).with_id(resolver_id)
    return Resolver(strategy_class=LatestBlessedModelStrategy, **every_model).with_id(resolver_id)


@dataclasses.dataclass(frozen=True)
class RunParameters:
    """Values a user may set per run instead of per compile (runtime parameters of an
    orchestrator such as Kubeflow); None takes the value from the configuration."""

    data_root: data_types.RuntimeParameter | None = None
    # A JSON TrainArgs, e.g. {"num_steps": 600}: TFX passes train_args to the Trainer whole.
    train_args: data_types.RuntimeParameter | None = None


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
    run_parameters: RunParameters = RunParameters(),
) -> tfx_pipeline.Pipeline:
    """ExampleGen (span window) -> statistics -> schema -> validation gate -> Trainer ->
    Evaluator (vs. the latest blessed model) + infra validation -> Pusher."""
    # Files are the runner's concern: on Kubeflow they are paths inside the image.
    config.validate(check_files=False)
    example_gen = FileBasedExampleGen(
        input_base=run_parameters.data_root or config.data_root,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="span", pattern=SPAN_PATTERN)]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=4),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1)])),
        custom_config=window_custom_config(SPAN_PATTERN, config.window),
        custom_executor_spec=BeamExecutorSpec(WindowCsvExecutor),
    ).with_id("ExampleGen")
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    if config.schema_path:
        schema_gen = ImportSchemaGen(schema_file=config.schema_path)
    else:
        schema_gen = SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(
        examples=example_gen.outputs["examples"],
        anomalies=example_validator.outputs["anomalies"], schema=schema_gen.outputs["schema"])

    warm_start_resolver = None
    if config.warm_start != "off":
        # Blessed models only (not LatestArtifactStrategy): never warm-start from a model the
        # Evaluator rejected.
        warm_start_resolver = _latest_blessed_model(
            WARM_START_RESOLVER_ID, config, LatestBlessedModelOfOtherExamplesStrategy,
            examples=example_gen.outputs["examples"])
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        schema=validation_gate.outputs["validated_schema"],
        base_model=warm_start_resolver.outputs["model"] if warm_start_resolver else None,
        train_args=(run_parameters.train_args
                    or trainer_pb2.TrainArgs(num_steps=config.train_steps)),
        eval_args=trainer_pb2.EvalArgs(num_steps=config.eval_steps),
        custom_config={
            # The code version is in the cache key: editing models/ re-runs the Trainer.
            "code_version": models.code_version(),
            "hparams": dict(config.hparams),
            "steps_per_epoch": config.steps_per_epoch,
            "seed": config.seed,
            "checkpoints": dataclasses.asdict(config.checkpoint_options()),
            "warm_start": config.warm_start,
            "transfer": dict(config.transfer),
        },
    )
    baseline_resolver = _latest_blessed_model(
        BASELINE_RESOLVER_ID, config, LatestBlessedOtherThanCandidateStrategy,
        candidate=trainer.outputs["model"])
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=eval_config(config),
    )
    # The candidate must load and answer in a TF Serving-compatible server before it is pushed.
    infra_validation = InfraValidation(
        model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
        model_name=config.model_name)
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validation.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=config.serving_model_dir)),
    )
    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator,
                    validation_gate, *([warm_start_resolver] if warm_start_resolver else []),
                    trainer, baseline_resolver, evaluator, infra_validation, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )
