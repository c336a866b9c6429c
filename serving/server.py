"""A model server that speaks TF Serving's REST and gRPC APIs.

The `tensorflow_model_server` binary is not on PyPI; this one takes its flag
names, so deployment scripts carry over:

    python -m serving.server --model_name=digits --model_base_path=/models/digits
    python -m serving.server --model_config_file=/models/models.config \\
        --rest_api_port=8501 --port=8500 --auth_token=$TOKEN

`--model_base_path` holds numbered SavedModel directories (`/models/digits/1`,
`/models/digits/2`, ...); the highest is served and new ones are loaded while
the server runs (`serving/model_manager.py`). The config file is TF Serving's
`ModelServerConfig` text proto (`serving/model_config.py`). REST
(`--rest_api_port`, default 8501; `serving/rest_api.py`, `serving/http_server.py`)
and gRPC (`--port`, default 8500, needs the extra `serving`;
`serving/grpc_api.py`) share one dynamic batcher (`serving/batching.py`) and
one stats endpoint, `GET /monitoring/stats` (`serving/stats.py`).

Differences from `tensorflow_model_server`: it binds `--host` (127.0.0.1 by
default, not every interface); `--rest_api_port` defaults to 8501 (TF Serving:
0, off); batching is on by default (`--enable_batching`, `--max_batch_size`,
`--batch_timeout_micros`, `--num_batch_threads` replace its
`--batching_parameters_file`); `--auth_token` adds bearer-token auth and
`--max_body_bytes` a request size limit (413); `--max_connections`,
`--max_requests_in_flight` and `--max_body_bytes_in_flight` bound what the REST
server holds at once (503 beyond), `--header_timeout_s`, `--body_timeout_s` and
`--idle_timeout_s` how long a client may take (`serving/admission.py`);
`--max_tensor_elements` and `--max_image_pixels` bound what one request may
make the server allocate, checked before allocating
(`serving/request_limits.py`); `--port=-1` / `--rest_api_port=-1` bind a free
port, named in the start-up line ("Serving NAMES on REST http://HOST:PORT and
gRPC HOST:PORT."). SIGTERM or SIGINT stops accepting,
finishes the requests in flight and exits 0.

This module and every `serving` module it imports use only TensorFlow, numpy,
absl, the standard library and (for gRPC) grpcio + tensorflow-serving-api;
never `official`.
"""

from __future__ import annotations

import os

# Before TensorFlow is imported: no C++ INFO lines in the log; C++ warnings
# and errors (a broken CUDA setup among them) still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import dataclasses  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from serving import model_config  # noqa: E402
from serving.admission import Limits  # noqa: E402
from serving.batching import BatchScheduler  # noqa: E402
from serving.http_server import RestServer  # noqa: E402
from serving.model_config import ModelConfig  # noqa: E402
from serving.model_manager import ModelManager  # noqa: E402
from serving.request_limits import RequestLimits  # noqa: E402
from serving.rest_api import RestApi  # noqa: E402
from serving.stats import ServerStats  # noqa: E402

GRPC_MISSING = (
    "gRPC needs the extra `serving` (pip install tensorflow-serving-api grpcio); "
    "pass --port=0 to serve REST only."
)


def grpc_available() -> bool:
    try:
        import grpc  # noqa: F401
        import tensorflow_serving.apis  # noqa: F401
    except ImportError:
        return False
    return True


def default_batch_threads() -> int:
    """Model calls at once when --num_batch_threads is not set: min(4, CPUs + 1).

    A model call releases the GIL for its whole run (a `Session` callable) and
    spends part of it waiting on TensorFlow's own thread hand-offs, so one
    call more than there are cores keeps the cores busy while the next
    requests are parsed. On the 2-core reference machine (batch-1 requests,
    batching on) 3 calls at once served 1035-1225 requests/s at 4 clients
    against 870-1020 with 2 and 835 with 1, and as many or more at 1 and 8
    clients. The same holds with batching off.
    """
    return min(4, (os.cpu_count() or 1) + 1)


class ModelServer:
    """The model manager, the batcher and the REST and gRPC front ends.

    Args:
        models: the models to serve.
        host: the address both front ends bind.
        rest_api_port: the REST port; 0 picks a free one, None disables REST.
        grpc_port: the gRPC port; 0 picks a free one, None disables gRPC.
        auth_token: when set, every request needs `Bearer <token>`.
        max_batch_size: the most rows in one batched model call; <= 1 is off.
        batch_timeout_micros: how long a batch may wait to fill.
        num_batch_threads: model calls running at once; None: min(4, CPUs + 1)
            (`default_batch_threads`).
        max_body_bytes: the largest REST body / gRPC message (None: the one in
            `limits`, 64 MiB by default).
        rest_api_timeout_in_ms: the longest a model call may take.
        file_system_poll_wait_seconds: seconds between version polls (0: once).
        limits: the REST server's connection, request, body-byte and deadline
            bounds (`serving/admission.py`); `max_body_bytes` overrides its own.
        request_limits: tensor elements and image pixels per request, checked
            before allocating (`serving/request_limits.py`); None: defaults.
    """

    def __init__(
        self,
        models: list[ModelConfig],
        host: str = "127.0.0.1",
        rest_api_port: int | None = 8501,
        grpc_port: int | None = None,
        auth_token: str = "",
        max_batch_size: int = 32,
        batch_timeout_micros: int = 0,
        num_batch_threads: int | None = None,
        max_body_bytes: int | None = None,
        rest_api_timeout_in_ms: int = 30000,
        file_system_poll_wait_seconds: float = 1.0,
        limits: Limits | None = None,
        request_limits: RequestLimits | None = None,
    ):
        if rest_api_port is None and grpc_port is None:
            raise ValueError(
                "Both REST and gRPC are disabled: nothing would be served."
            )
        if grpc_port is not None and not grpc_available():
            raise ImportError(GRPC_MISSING)
        limits = limits or Limits()
        if max_body_bytes is not None:
            limits = dataclasses.replace(limits, max_body_bytes=max_body_bytes)
        limits.validate()
        self.stats = ServerStats()
        self.manager = ModelManager(models, file_system_poll_wait_seconds)
        self._options = dict(
            host=host,
            rest_api_port=rest_api_port,
            grpc_port=grpc_port,
            auth_token=auth_token,
            max_body_bytes=limits.max_body_bytes,
            timeout_s=rest_api_timeout_in_ms / 1000,
            limits=limits,
            request_limits=request_limits or RequestLimits(),
        )
        self._batching = dict(
            max_batch_size=max_batch_size,
            batch_timeout_micros=batch_timeout_micros,
            num_batch_threads=num_batch_threads or default_batch_threads(),
        )
        self.scheduler: BatchScheduler | None = None
        self.rest: RestServer | None = None
        self.grpc = None

    @property
    def rest_port(self) -> int | None:
        return self.rest.port if self.rest else None

    @property
    def grpc_port(self) -> int | None:
        return self.grpc.port if self.grpc else None

    def start(self) -> None:
        """Loads the models (first poll), then opens the ports."""
        options = self._options
        self.manager.start()
        self.scheduler = BatchScheduler(
            **self._batching, on_batch=self.stats.record_batch
        )
        try:
            if options["rest_api_port"] is not None:
                api = RestApi(
                    self.manager,
                    self.scheduler,
                    self.stats,
                    options["timeout_s"],
                    request_limits=options["request_limits"],
                )
                self.rest = RestServer(
                    api,
                    options["host"],
                    options["rest_api_port"],
                    options["auth_token"],
                    options["max_body_bytes"],
                    options["limits"],
                )
            if options["grpc_port"] is not None:
                from serving.grpc_api import GrpcServer

                self.grpc = GrpcServer(
                    self.manager,
                    self.scheduler,
                    self.stats,
                    options["host"],
                    options["grpc_port"],
                    options["auth_token"],
                    options["max_body_bytes"],
                    options["timeout_s"],
                    request_limits=options["request_limits"],
                    max_concurrent_rpcs=options["limits"].max_requests_in_flight,
                )
        except Exception:
            self.stop()
            raise
        if self.rest:
            self.rest.start()
        if self.grpc:
            self.grpc.start()

    def stop(self, grace_s: float = 30.0) -> None:
        """Stops accepting, finishes in-flight requests, stops batcher and poller."""
        front_ends = [f for f in (self.rest, self.grpc) if f is not None]
        threads = [threading.Thread(target=f.stop, args=(grace_s,)) for f in front_ends]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.manager.stop()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- the binary ----------------------------------------------------------------

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """tensorflow_model_server's flags, plus --host, --auth_token and batching."""
    fv = flag_values
    flags.DEFINE_integer(
        "port",
        8500,
        "gRPC port; 0 disables gRPC, -1 binds a free port (printed at start).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "rest_api_port",
        8501,
        "REST port; 0 disables REST, -1 binds a free port (printed at start).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "host", "127.0.0.1", "Address to bind (0.0.0.0: all).", flag_values=fv
    )
    flags.DEFINE_string("model_name", "default", "Name of the model.", flag_values=fv)
    flags.DEFINE_string(
        "model_base_path",
        "",
        "Directory of numbered SavedModel versions.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "model_config_file",
        "",
        "ModelServerConfig text proto (several models).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "file_system_poll_wait_seconds",
        1,
        "Seconds between polls for new versions; 0 polls once, < 0 never.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "rest_api_timeout_in_ms",
        30000,
        "Longest a model call may take.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "auth_token",
        "",
        "When set, requests need 'Authorization: Bearer <token>'. "
        "Prefer the environment variable GARDEN_SERVING_AUTH_TOKEN (not in `ps`).",
        flag_values=fv,
    )
    flags.DEFINE_bool(
        "enable_batching", True, "Batch concurrent requests.", flag_values=fv
    )
    flags.DEFINE_integer(
        "max_batch_size", 32, "Most rows per batched call.", flag_values=fv
    )
    flags.DEFINE_integer(
        "batch_timeout_micros", 0, "Longest wait for a batch to fill.", flag_values=fv
    )
    flags.DEFINE_integer(
        "num_batch_threads",
        0,
        "Model calls at once; 0: min(4, CPUs + 1). Raise it "
        "when serving several models.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "max_body_bytes", 64 << 20, "Largest request body (413 above).", flag_values=fv
    )
    flags.DEFINE_integer(
        "max_tensor_elements",
        RequestLimits.max_tensor_elements,
        "Most tensor elements one request's inputs may declare together, "
        "checked before anything is allocated (400 / INVALID_ARGUMENT above); "
        "0: no limit.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "max_image_pixels",
        RequestLimits.max_image_pixels,
        "Most pixels (width x height, read from the header) an encoded image "
        "in a string input or tf.Example may declare, checked before the "
        "model decodes it (400 / INVALID_ARGUMENT above); 0: no limit.",
        flag_values=fv,
    )
    limits = Limits()
    flags.DEFINE_integer(
        "max_connections",
        limits.max_connections,
        "Open REST connections; one more is answered 503 and closed.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "max_requests_in_flight",
        limits.max_requests_in_flight,
        "REST requests being read or answered at once; more are answered 503. "
        "Also bounds the gRPC calls admitted at once (more: RESOURCE_EXHAUSTED).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "max_body_bytes_in_flight",
        limits.max_body_bytes_in_flight,
        "Request body bytes held at once by all REST requests; a body that "
        "does not fit is answered 503.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "header_timeout_s",
        limits.header_timeout_s,
        "Seconds for a client to send a request's headers (from its first byte); "
        "a slower one is disconnected.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "body_timeout_s",
        limits.body_timeout_s,
        "Seconds for a client to send a request body after its headers; "
        "a slower one gets 408 and is disconnected.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "idle_timeout_s",
        limits.idle_timeout_s,
        "Seconds an idle keep-alive REST connection stays open.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "tensorflow_intra_op_parallelism",
        0,
        "Threads per op; 0: TF's choice.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "tensorflow_inter_op_parallelism",
        0,
        "Ops at once; 0: TF's choice.",
        flag_values=fv,
    )


def configs_from_flags(fv: flags.FlagValues = FLAGS) -> list[ModelConfig]:
    if bool(fv.model_base_path) == bool(fv.model_config_file):
        raise app.UsageError(
            "Set exactly one of --model_base_path (with --model_name) or "
            f"--model_config_file. Received: model_base_path={fv.model_base_path!r}, "
            f"model_config_file={fv.model_config_file!r}."
        )
    if fv.model_config_file:
        return model_config.load_config_file(fv.model_config_file)
    return model_config.from_flags(fv.model_name, fv.model_base_path)


def _port(value: int) -> int | None:
    """A port flag as `ModelServer` takes it: 0 (off) -> None, -1 (any) -> 0."""
    return None if value == 0 else max(value, 0)


def server_from_flags(fv: flags.FlagValues = FLAGS) -> ModelServer:
    for name in ("port", "rest_api_port"):
        if not -1 <= fv[name].value <= 65535:
            raise app.UsageError(
                f"--{name} must be in [-1, 65535] (0: off, -1: a free port). "
                f"Received: {fv[name].value}."
            )
    grpc_port = _port(fv.port)
    if grpc_port is not None and not grpc_available():
        if fv["port"].present:
            raise app.UsageError(GRPC_MISSING)
        logging.warning("%s Serving REST only.", GRPC_MISSING)
        grpc_port = None
    return ModelServer(
        configs_from_flags(fv),
        host=fv.host,
        rest_api_port=_port(fv.rest_api_port),
        grpc_port=grpc_port,
        auth_token=fv.auth_token or os.environ.get("GARDEN_SERVING_AUTH_TOKEN", ""),
        max_batch_size=fv.max_batch_size if fv.enable_batching else 1,
        batch_timeout_micros=fv.batch_timeout_micros,
        num_batch_threads=fv.num_batch_threads or None,
        max_body_bytes=fv.max_body_bytes,
        rest_api_timeout_in_ms=fv.rest_api_timeout_in_ms,
        file_system_poll_wait_seconds=fv.file_system_poll_wait_seconds,
        limits=limits_from_flags(fv),
        request_limits=request_limits_from_flags(fv),
    )


def request_limits_from_flags(fv: flags.FlagValues = FLAGS) -> RequestLimits:
    try:
        return RequestLimits(fv.max_tensor_elements, fv.max_image_pixels)
    except ValueError as e:
        raise app.UsageError(str(e)) from None


def limits_from_flags(fv: flags.FlagValues = FLAGS) -> Limits:
    limits = Limits(
        max_connections=fv.max_connections,
        max_requests_in_flight=fv.max_requests_in_flight,
        max_body_bytes=fv.max_body_bytes,
        max_body_bytes_in_flight=fv.max_body_bytes_in_flight,
        header_timeout_s=fv.header_timeout_s,
        body_timeout_s=fv.body_timeout_s,
        idle_timeout_s=fv.idle_timeout_s,
    )
    try:
        limits.validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    return limits


def main(argv: list[str], fv: flags.FlagValues = FLAGS) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(
        fv.tensorflow_intra_op_parallelism
    )
    tf.config.threading.set_inter_op_parallelism_threads(
        fv.tensorflow_inter_op_parallelism
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = server_from_flags(fv)
        server.start()
    except (FileNotFoundError, ValueError, ImportError, OSError) as e:
        print(f"serving.server: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    names = ", ".join(server.manager.model_names())
    ends = []
    if server.rest_port:
        ends.append(f"REST http://{fv.host}:{server.rest_port}")
    if server.grpc_port:
        ends.append(f"gRPC {fv.host}:{server.grpc_port}")
    print(
        f"Serving {names} on {' and '.join(ends)}. Stop with SIGTERM or Ctrl-C.",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    print("Stopping: finishing in-flight requests.", flush=True)
    server.stop()
    print("Stopped.", flush=True)
    return 0


def run() -> None:
    define_flags()
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    run()
