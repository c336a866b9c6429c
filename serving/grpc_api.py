"""TF Serving's gRPC API with the protos of `tensorflow-serving-api`.

Services (existing TF Serving clients work unchanged):

- `tensorflow.serving.PredictionService`: `Predict` (inputs and outputs as
  `TensorProto`s, `output_filter` honoured), `GetModelMetadata`
  (`metadata_field: "signature_def"`, answered with a packed
  `SignatureDefMap`) and `Classify` (an `example_list` or
  `example_list_with_context`, mapped onto a tf.Example signature as in
  `serving/classify.py`), `Regress` (a signature with an `outputs` output,
  as TF Serving's regression SignatureDefs) and `MultiInference` (several
  classify / regress tasks of one model on the same examples).
- `tensorflow.serving.ModelService`: `GetModelStatus`.
  `HandleReloadConfigRequest` answers UNIMPLEMENTED.

Errors abort the call with the status code a `ServingError` carries
(INVALID_ARGUMENT, NOT_FOUND, ...). A Predict input's declared shape counts
against `--max_tensor_elements` before the `TensorProto` becomes an array,
and encoded images in string tensors and example bytes features against
`--max_image_pixels` before the model runs (`serving/request_limits.py`). With an auth token, every call needs the
metadata `authorization: Bearer <token>` (else UNAUTHENTICATED).

Needs the extra `serving` (`tensorflow-serving-api`, `grpcio`); imports
nothing from `official`.
"""

from __future__ import annotations

import concurrent.futures
import hmac
import time

import grpc
import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)

from serving import classify
from serving.batching import BatchScheduler
from serving.json_codec import object_array
from serving.model_manager import ModelManager
from serving.request_limits import RequestLimits
from serving.serving_error import ServingError, invalid
from serving.stats import ServerStats

_STATES = get_model_status_pb2.ModelVersionStatus.State
_ERROR_CODES = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type


def _model_name(request) -> str | None:
    """The model a request names, for the stats (MultiInference: per task)."""
    if isinstance(request, inference_pb2.MultiInferenceRequest):
        return request.tasks[0].model_spec.name or None if request.tasks else None
    return request.model_spec.name or None


class _Core:
    """What both services share: lookups, auth, timing and error handling."""

    def __init__(self, manager, scheduler, stats, auth_token, timeout_s, limits):
        self.manager = manager
        self.scheduler = scheduler
        self.stats = stats
        self.auth_token = auth_token
        self.timeout_s = timeout_s
        self.limits = limits

    def call(self, method: str, request, context, answer):
        started = time.monotonic()
        model = _model_name(request)
        try:
            self._check_token(context)
            response = answer(request, context)
        except ServingError as e:
            self.stats.record(
                f"grpc:{method}", model, e.code, False, time.monotonic() - started
            )
            context.abort(grpc.StatusCode[e.code], e.message)
        self.stats.record(
            f"grpc:{method}", model, "OK", True, time.monotonic() - started
        )
        return response

    def _check_token(self, context) -> None:
        if not self.auth_token:
            return
        header = dict(context.invocation_metadata()).get("authorization", "")
        scheme, _, given = header.partition(" ")
        if not header:
            raise ServingError(
                "UNAUTHENTICATED",
                "Missing bearer token: send the metadata "
                "'authorization: Bearer <token>'.",
            )
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.auth_token.encode()
        ):
            raise ServingError("UNAUTHENTICATED", "Invalid bearer token.")

    def loaded(self, spec):
        choice = spec.WhichOneof("version_choice")
        version = spec.version.value if choice == "version" else None
        label = spec.version_label if choice == "version_label" else None
        return self.manager.get(spec.name, version, label)

    def timeout(self, context) -> float:
        remaining = context.time_remaining()
        return self.timeout_s if remaining is None else min(self.timeout_s, remaining)


def _fill_spec(spec, loaded, signature_name: str = "") -> None:
    spec.name = loaded.name
    spec.version.value = loaded.version
    if signature_name:
        spec.signature_name = signature_name


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: _Core):
        self._core = core

    def Predict(self, request, context):  # noqa: N802 - the proto's method name.
        return self._core.call("Predict", request, context, self._predict)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return self._core.call("GetModelMetadata", request, context, self._metadata)

    def Classify(self, request, context):  # noqa: N802
        return self._core.call("Classify", request, context, self._classify)

    def Regress(self, request, context):  # noqa: N802
        return self._core.call("Regress", request, context, self._regress)

    def MultiInference(self, request, context):  # noqa: N802
        return self._core.call(
            "MultiInference", request, context, self._multi_inference
        )

    def _predict(self, request, context):
        loaded = self._core.loaded(request.model_spec)
        signature = loaded.signature(request.model_spec.signature_name)
        arrays = {}
        budget = self._core.limits.budget()
        for key, proto in request.inputs.items():
            field = f"inputs[{key!r}]"
            if proto.tensor_shape.unknown_rank:
                raise invalid(f"{field}: the TensorProto must have a known shape.")
            budget.take([dim.size for dim in proto.tensor_shape.dim], field)
            try:
                arrays[key] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                raise invalid(
                    f"Input {key!r} is not a valid TensorProto: {e}"
                ) from None
        signature.check_inputs(arrays)
        self._core.limits.check_strings(arrays, "inputs")
        for key in request.output_filter:
            if key not in signature.outputs:
                raise invalid(
                    f"output_filter names {key!r}, which signature {signature.name!r} "
                    f"does not output. Outputs: {', '.join(signature.outputs)}."
                )
        outputs = self._core.scheduler.run(
            signature, arrays, self._core.timeout(context)
        )
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, loaded, signature.name)
        for key, value in outputs.items():
            if not request.output_filter or key in request.output_filter:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def _metadata(self, request, context):
        loaded = self._core.loaded(request.model_spec)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise invalid(
                f"metadata_field must be ['signature_def'] (the only metadata served); "
                f"received {fields}."
            )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in loaded.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _fill_spec(response.model_spec, loaded)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def _examples(self, proto_input, request_kind: str) -> list:
        """The serialized tf.Examples of an `Input`, images checked."""
        kind = proto_input.WhichOneof("kind")
        if kind == "example_list":
            examples = list(proto_input.example_list.examples)
        elif kind == "example_list_with_context":
            with_context = proto_input.example_list_with_context
            examples = []
            for example in with_context.examples:
                merged = example_pb2.Example()
                merged.CopyFrom(with_context.context)
                merged.MergeFrom(example)
                examples.append(merged)
        else:
            raise invalid(f"{request_kind}.input has no example_list.")
        if not examples:
            raise invalid(f"{request_kind}.input holds no examples.")
        self._core.limits.check_examples(examples, "examples")
        return object_array([e.SerializeToString() for e in examples])

    def _run(self, signature, serialized, context) -> dict:
        (key,) = signature.inputs
        return self._core.scheduler.run(
            signature, {key: serialized}, self._core.timeout(context)
        )

    def _classify(self, request, context):
        loaded = self._core.loaded(request.model_spec)
        signature = classify.classify_signature(
            loaded, request.model_spec.signature_name
        )
        serialized = self._examples(request.input, "ClassificationRequest")
        response = classification_pb2.ClassificationResponse()
        _fill_spec(response.model_spec, loaded, signature.name)
        _fill_classes(
            response.result,
            loaded,
            signature,
            self._run(signature, serialized, context),
        )
        return response

    def _regress(self, request, context):
        loaded = self._core.loaded(request.model_spec)
        signature = classify.regress_signature(
            loaded, request.model_spec.signature_name
        )
        serialized = self._examples(request.input, "RegressionRequest")
        response = regression_pb2.RegressionResponse()
        _fill_spec(response.model_spec, loaded, signature.name)
        outputs = self._run(signature, serialized, context)
        for value in classify.regressions(signature, outputs):
            response.result.regressions.add(value=value)
        return response

    def _multi_inference(self, request, context):
        """Each task (classify or regress) of one model on the same examples."""
        if not request.tasks:
            raise invalid("MultiInferenceRequest.tasks is empty.")
        names = {task.model_spec.name for task in request.tasks}
        if len(names) != 1:
            raise invalid(
                f"All tasks of a MultiInferenceRequest must name the same model; "
                f"received {sorted(names)}."
            )
        methods = {
            classify.CLASSIFY_METHOD: classify.classify_signature,
            classify.REGRESS_METHOD: classify.regress_signature,
        }
        plan, seen = [], set()
        for index, task in enumerate(request.tasks):
            if task.method_name not in methods:
                raise invalid(
                    f"tasks[{index}].method_name {task.method_name!r} is not "
                    f"supported. Valid: {', '.join(methods)}."
                )
            loaded = self._core.loaded(task.model_spec)
            signature = methods[task.method_name](
                loaded, task.model_spec.signature_name
            )
            if signature.name in seen:
                raise invalid(
                    f"tasks[{index}]: signature {signature.name!r} is asked for "
                    f"twice; each task needs its own signature."
                )
            seen.add(signature.name)
            plan.append((task.method_name, loaded, signature))
        serialized = self._examples(request.input, "MultiInferenceRequest")
        response = inference_pb2.MultiInferenceResponse()
        for method, loaded, signature in plan:
            outputs = self._run(signature, serialized, context)
            result = response.results.add()
            _fill_spec(result.model_spec, loaded, signature.name)
            if method == classify.CLASSIFY_METHOD:
                _fill_classes(result.classification_result, loaded, signature, outputs)
            else:
                for value in classify.regressions(signature, outputs):
                    result.regression_result.regressions.add(value=value)
        return response


def _fill_classes(result, loaded, signature, outputs) -> None:
    for row in classify.classifications(loaded, signature, outputs):
        classification = result.classifications.add()
        for label, score in row:
            classification.classes.add(label=label, score=score)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: _Core):
        self._core = core

    def GetModelStatus(self, request, context):  # noqa: N802
        return self._core.call("GetModelStatus", request, context, self._status)

    def _status(self, request, context):
        spec = request.model_spec
        choice = spec.WhichOneof("version_choice")
        statuses = self._core.manager.statuses(
            spec.name,
            spec.version.value if choice == "version" else None,
            spec.version_label if choice == "version_label" else None,
        )
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            entry = response.model_version_status.add()
            entry.version = status.version
            entry.state = _STATES.Value(status.state)
            entry.status.error_code = _ERROR_CODES.values_by_name[
                status.error_code
            ].number
            entry.status.error_message = status.error_message
        return response


class GrpcServer:
    """The gRPC front end on `host:port` (port 0 picks a free one).

    Args:
        manager, scheduler, stats: shared with the REST front end.
        host: the address to bind; 127.0.0.1 by default.
        port: the TCP port; 0 picks a free one (see `port`).
        auth_token: when set, calls need `authorization: Bearer <token>`.
        max_message_bytes: the largest request message accepted.
        timeout_s: the longest a model call may take (the client's deadline
            shortens it).
        max_workers: RPCs handled at once.
        max_concurrent_rpcs: RPCs admitted at once (handled or waiting for a
            worker); one more is refused at once with RESOURCE_EXHAUSTED.
            0: no bound.
        request_limits: tensor elements and image pixels per request
            (`serving/request_limits.py`); None: the defaults.
    """

    def __init__(
        self,
        manager: ModelManager,
        scheduler: BatchScheduler,
        stats: ServerStats,
        host: str = "127.0.0.1",
        port: int = 8500,
        auth_token: str = "",
        max_message_bytes: int = 64 << 20,
        timeout_s: float = 30.0,
        max_workers: int = 32,
        request_limits: RequestLimits | None = None,
        max_concurrent_rpcs: int = 0,
    ):
        core = _Core(
            manager,
            scheduler,
            stats,
            auth_token,
            timeout_s,
            request_limits or RequestLimits(),
        )
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(
                max_workers, thread_name_prefix="grpc"
            ),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=max_concurrent_rpcs or None,
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(core), self._server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(core), self._server
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as e:
            raise OSError(f"Cannot bind the gRPC port {address}: {e}") from None
        if not self.port:
            raise OSError(f"Cannot bind the gRPC port {address}.")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float = 30.0) -> None:
        """Refuses new RPCs and waits up to `grace_s` for in-flight ones."""
        self._server.stop(grace_s).wait()
