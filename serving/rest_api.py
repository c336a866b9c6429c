"""TF Serving's REST API: routing and answers, independent of the transport.

Endpoints (https://www.tensorflow.org/tfx/serving/api_rest), where
`NAME` may be followed by `/versions/V` or `/labels/LABEL`:

    GET  /v1/models/NAME             {"model_version_status": [{"version": "2",
                                       "state": "AVAILABLE", "status":
                                       {"error_code": "OK", "error_message": ""}}]}
    GET  /v1/models/NAME/metadata    {"model_spec": {...}, "metadata":
                                       {"signature_def": {"signature_def": {...}}}}
    POST /v1/models/NAME:predict     row ("instances") or columnar ("inputs")
                                     JSON, see `serving/json_codec.py`
    POST /v1/models/NAME:classify    tf.Example JSON, see `serving/classify.py`
    POST /v1/models/NAME:regress     the same body; {"result": [value, ...]}
    GET  /monitoring/stats           counts and latencies, see `serving/stats.py`

Every error is `{"error": "message"}` with the HTTP status TF Serving uses
for its status code (400 bad request, 404 unknown model or version, 405 wrong
method, 501 unsupported verb, 504 deadline). The HTTP side (keep-alive,
bearer token, body limit, graceful stop) is `serving/http_server.py`.

Imports only TensorFlow (protobuf's json_format), numpy and the standard library.
"""

from __future__ import annotations

import json
import re
import urllib.parse

from google.protobuf import json_format

from serving import classify, json_codec, numeric_json
from serving.batching import BatchScheduler
from serving.model_manager import ModelManager
from serving.request_limits import RequestLimits
from serving.serving_error import ServingError, invalid, not_found
from serving.stats import ServerStats

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<tail>/metadata|:[A-Za-z]+)?$"
)
VERBS = ("predict", "classify", "regress")


def _clip(text: str, limit: int = 80) -> str:
    """`text` for an error message: long input is cut, not echoed whole."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _message_to_dict(message) -> dict:
    try:
        return json_format.MessageToDict(
            message,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
    except TypeError:  # protobuf < 5.26 names the option differently.
        return json_format.MessageToDict(
            message,
            preserving_proto_field_name=True,
            including_default_value_fields=True,
        )


def status_json(statuses) -> dict:
    return {
        "model_version_status": [
            {
                "version": str(s.version),
                "state": s.state,
                "status": {
                    "error_code": s.error_code,
                    "error_message": s.error_message,
                },
            }
            for s in statuses
        ]
    }


def metadata_json(loaded) -> dict:
    signature_defs = {
        key: _message_to_dict(value)
        for key, value in sorted(loaded.signature_defs.items())
    }
    return {
        "model_spec": {
            "name": loaded.name,
            "signature_name": "",
            "version": str(loaded.version),
        },
        "metadata": {"signature_def": {"signature_def": signature_defs}},
    }


def parse_json(body: bytes, fast_numbers: bool = False):
    """The JSON body; with `fast_numbers`, long numeric arrays stay `NumericText`."""
    try:
        return numeric_json.loads(body) if fast_numbers else json.loads(body)
    except json.JSONDecodeError as e:
        raise invalid(
            f"Malformed JSON in the request body: {e.msg} at line {e.lineno} "
            f"column {e.colno}."
        ) from None
    except UnicodeDecodeError:
        raise invalid("The request body is not UTF-8 JSON.") from None


class RestApi:
    """Answers REST requests; independent of the HTTP transport.

    Args:
        manager: the loaded models.
        scheduler: runs (and batches) the model calls.
        stats: where each request is recorded.
        timeout_s: the longest a predict or classify call may take.
        request_limits: tensor elements and image pixels per request
            (`serving/request_limits.py`); None: the defaults.
    """

    def __init__(
        self,
        manager: ModelManager,
        scheduler: BatchScheduler,
        stats: ServerStats,
        timeout_s: float = 30.0,
        request_limits: RequestLimits | None = None,
    ):
        self.request_limits = request_limits or RequestLimits()
        self.manager = manager
        self.scheduler = scheduler
        self.stats = stats
        self.timeout_s = timeout_s

    def route(self, method: str, path: str):
        """(endpoint, handler(body) -> dict, model) for a request, or raises."""
        path = urllib.parse.urlsplit(path).path
        if path in ("/monitoring/stats", "/monitoring/stats/"):
            if method != "GET":
                raise ServingError("INVALID_ARGUMENT", f"Use GET for {path}.", 405)
            return "stats", lambda body: self.stats.snapshot(), None
        match = _MODEL_PATH.match(path)
        if not match:
            raise not_found(
                f"Malformed request: {method} {_clip(path)}. Valid paths: "
                f"/v1/models/NAME[/versions/V|/labels/L][/metadata|:predict|:classify|:regress] "
                f"and /monitoring/stats."
            )
        name = urllib.parse.unquote(match["name"])
        label = urllib.parse.unquote(match["label"]) if match["label"] else None
        version = None
        if match["version"] is not None:
            digits = match["version"]
            ascii_digits = digits.isascii() and digits.isdigit()
            if not ascii_digits or len(digits) > 19 or int(digits) >= 2**63:
                raise invalid(
                    f"Version must be an integer in [0, 2**63); received "
                    f"{_clip(digits)!r}."
                )
            version = int(match["version"])
        tail = match["tail"] or ""
        if tail.startswith(":"):
            verb = tail[1:]
            if verb not in VERBS:
                raise ServingError(
                    "UNIMPLEMENTED",
                    f"Unsupported method :{_clip(verb)}. Supported: "
                    + ", ".join(f":{v}" for v in VERBS)
                    + ".",
                )
            if method != "POST":
                raise ServingError("INVALID_ARGUMENT", f"Use POST for :{verb}.", 405)
            run = {
                "predict": self._predict,
                "classify": self._classify,
                "regress": self._regress,
            }[verb]
            return verb, lambda body: run(name, version, label, body), name
        if method != "GET":
            raise ServingError("INVALID_ARGUMENT", f"Use GET for {path}.", 405)
        if tail == "/metadata":
            return (
                "metadata",
                lambda body: metadata_json(self.manager.get(name, version, label)),
                name,
            )
        return (
            "status",
            lambda body: status_json(self.manager.statuses(name, version, label)),
            name,
        )

    def _predict(self, name, version, label, body: bytes) -> dict:
        loaded = self.manager.get(name, version, label)
        request = parse_json(body, fast_numbers=True)
        signature_name, arrays, rows = json_codec.decode_request(
            request, loaded.signature, self.request_limits
        )
        outputs = self.scheduler.run(
            loaded.signatures[signature_name], arrays, self.timeout_s
        )
        return json_codec.encode_response(outputs, rows)

    def _classify(self, name, version, label, body: bytes) -> dict:
        loaded = self.manager.get(name, version, label)
        signature_name, examples = classify.examples_from_json(
            parse_json(body), self.request_limits
        )
        signature = classify.classify_signature(loaded, signature_name)
        outputs = self._run_examples(signature, examples)
        result = classify.classifications(loaded, signature, outputs)
        return {"result": [[[label, score] for label, score in row] for row in result]}

    def _regress(self, name, version, label, body: bytes) -> dict:
        loaded = self.manager.get(name, version, label)
        signature_name, examples = classify.examples_from_json(
            parse_json(body), self.request_limits
        )
        signature = classify.regress_signature(loaded, signature_name)
        outputs = self._run_examples(signature, examples)
        return {"result": classify.regressions(signature, outputs)}

    def _run_examples(self, signature, examples: list[bytes]) -> dict:
        (key,) = signature.inputs
        arrays = {key: json_codec.object_array(examples)}
        signature.check_inputs(arrays)
        return self.scheduler.run(signature, arrays, self.timeout_s)
