"""N concurrent clients against a REST predict URL for a bounded time.

Examples:
    python tools/load_test.py \\
      --url=http://127.0.0.1:8501/v1/models/digits:predict \\
      --concurrency=8 --duration_s=10 --image_shape=32,32,3
    python tools/load_test.py --url=... --body_file=request.json \\
      --auth_token=$TOKEN --compare_in_process=/models/digits/1

Each client holds one keep-alive HTTP/1.1 connection and sends the same
request body in a loop: `--body_file`, or one random uint8 image of
`--image_shape` as `{"signature_name": ..., "instances": [image]}` (batch 1).
A request goes out in one write and the answer is read by its
Content-Length (a few lines of socket code, not `http.client`), so the
clients take as little CPU as they can from a server on the same machine.
Requests during the first `--warmup_s` are not counted. Prints the
throughput, the p50 and p99 latency of the successful requests, and the
errors by HTTP status (or exception).

With `--compare_in_process=SAVED_MODEL_DIR` the same run also loads that
SavedModel in this process and calls the request's signature directly on
the decoded request (the same tensors, batch 1 when the request is) from
`--concurrency` threads: by default as TF2 code does
(`tf.saved_model.load(dir).signatures[name](**tensors)`); with
`--in_process_runner=session` through the server's own TF1 `Session`
callable, which leaves HTTP and JSON as the only difference. REST and
in-process alternate `--rounds` times, `--duration_s` in all for each, so
that both meet the same background load; it prints REST throughput divided
by in-process throughput. The clients run
on the same machine as the server and take CPU from it, as in-process calls
need no client. The in-process calls use TensorFlow's default thread pools;
when the server runs with `--tensorflow_intra_op_parallelism` or
`--tensorflow_inter_op_parallelism`, pass the same numbers as
`--intra_op_threads` / `--inter_op_threads` so both sides run the model alike.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("url", None, "A :predict (or :classify) URL.", flag_values=FLAGS)
flags.DEFINE_integer("concurrency", 8, "Concurrent clients.", flag_values=FLAGS)
flags.DEFINE_float("duration_s", 10.0, "Measured seconds.", flag_values=FLAGS)
flags.DEFINE_float("warmup_s", 1.0, "Seconds sent before measuring.", flag_values=FLAGS)
flags.DEFINE_string("body_file", None, "JSON request body to send.", flag_values=FLAGS)
flags.DEFINE_list(
    "image_shape",
    ["32", "32", "3"],
    "Shape of the random uint8 image (no --body_file).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "signature_name", "", "signature_name of the generated body.", flag_values=FLAGS
)
flags.DEFINE_string("auth_token", "", "Bearer token.", flag_values=FLAGS)
flags.DEFINE_string(
    "compare_in_process",
    None,
    "SavedModel dir to time in-process too.",
    flag_values=FLAGS,
)
flags.DEFINE_float("timeout_s", 30.0, "Per-request socket timeout.", flag_values=FLAGS)
flags.DEFINE_integer(
    "intra_op_threads",
    0,
    "With --compare_in_process: TF intra-op threads in this process "
    "(0: TF's choice); set it as the server's --tensorflow_intra_op_parallelism.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "inter_op_threads",
    0,
    "With --compare_in_process: TF inter-op threads in this process "
    "(0: TF's choice); set it as the server's --tensorflow_inter_op_parallelism.",
    flag_values=FLAGS,
)
RUNNERS = ("function", "session")
flags.DEFINE_enum(
    "in_process_runner",
    "function",
    list(RUNNERS),
    "With --compare_in_process: 'function' calls tf.saved_model.load(dir)"
    ".signatures[name] (the usual TF2 call); 'session' calls a TF1 Session "
    "callable, as the server does, so the ratio is the cost of HTTP and JSON alone.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "rounds",
    3,
    "With --compare_in_process: REST and in-process alternate this often.",
    flag_values=FLAGS,
)


def make_body(image_shape: list[int], signature_name: str = "", seed: int = 0) -> bytes:
    """One random uint8 image as a row-format predict body."""
    import numpy as np

    image = np.random.default_rng(seed).integers(0, 256, image_shape, dtype=np.uint8)
    body = {"instances": [image.tolist()]}
    if signature_name:
        body["signature_name"] = signature_name
    return json.dumps(body).encode("utf-8")


class _Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: collections.Counter = collections.Counter()
        self.first_error: dict[str, str] = {}

    def add(self, seconds: float | None, error: str | None = None, detail: str = ""):
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
            else:
                self.errors[error] += 1
                self.first_error.setdefault(error, detail[:300])


def summarize(latencies: list[float], errors: int, seconds: float) -> dict:
    values = sorted(latencies)

    def pct(fraction):
        if not values:
            return 0.0
        return values[max(0, min(len(values) - 1, round(fraction * len(values)) - 1))]

    return {
        "requests": len(values),
        "errors": errors,
        "throughput": len(values) / seconds,
        "p50_ms": pct(0.5) * 1000,
        "p99_ms": pct(0.99) * 1000,
    }


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends a prepared request.

    The request (head and body) goes out in one `sendall` and the response is
    read through its Content-Length: lighter than `http.client` (which sends
    head and body separately and parses headers with the email package), so
    the clients take less CPU from a server on the same machine.
    """

    def __init__(self, host: str, port: int, timeout_s: float):
        self._socket = socket.create_connection((host, port), timeout=timeout_s)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._socket.makefile("rb")

    def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Sends `request`; returns (status, body, whether the server closes)."""
        self._socket.sendall(request)
        line = self._file.readline(65537)
        words = line.split(None, 2)
        if (
            len(words) < 2
            or not words[0].startswith(b"HTTP/")
            or not words[1].isdigit()
        ):
            raise http.client.BadStatusLine(line.decode("latin-1") or "(closed)")
        length, close = None, False
        while True:
            line = self._file.readline(65537)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise http.client.IncompleteRead(b"", None)
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if length is None:
            data, close = self._file.read(), True
        else:
            data = self._file.read(length)
            if len(data) < length:
                raise http.client.IncompleteRead(data, length - len(data))
        return int(words[1]), data, close

    def close(self) -> None:
        """Closes the connection."""
        self._file.close()
        self._socket.close()


def _rest_raw(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    auth_token: str,
    timeout_s: float,
) -> dict:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--url must be http://HOST:PORT/...; received {url!r}.")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    port = parts.port or 80
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.hostname}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if auth_token:
        head.append(f"Authorization: Bearer {auth_token}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    results = _Results()
    start = time.monotonic() + warmup_s
    end = start + duration_s

    def client():
        connection = None
        while True:
            now = time.monotonic()
            if now >= end:
                break
            sent = time.monotonic()
            try:
                if connection is None:
                    connection = _Connection(parts.hostname, port, timeout_s)
                status, data, close = connection.exchange(request)
                if close:
                    connection.close()
                    connection = None
            except (OSError, ValueError, http.client.HTTPException) as e:
                if connection is not None:
                    connection.close()
                connection = None
                if sent >= start:
                    results.add(None, type(e).__name__, str(e))
                continue
            done = time.monotonic()
            if sent < start or done > end:
                continue
            if status == 200:
                results.add(done - sent)
            else:
                results.add(None, f"HTTP {status}", data.decode("utf-8", "replace"))
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=warmup_s + duration_s + timeout_s + 5)
    return {
        "latencies": results.latencies,
        "error_kinds": dict(results.errors),
        "first_errors": results.first_error,
    }


def run_rest(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    auth_token: str = "",
    timeout_s: float = 30.0,
) -> dict:
    """Runs the clients; returns throughput, p50_ms, p99_ms, errors and details."""
    raw = _rest_raw(url, body, concurrency, duration_s, warmup_s, auth_token, timeout_s)
    return _merge([raw], duration_s)


class InProcess:
    """The request's signature of a SavedModel, called directly (no server).

    Args:
        saved_model_dir: the SavedModel (e.g. the served version's directory).
        body: the JSON request body; its decoded tensors are what is fed.
        intra_op_threads: TensorFlow's intra-op threads (0: its choice); set
            before TensorFlow starts, so the first `InProcess` decides.
        inter_op_threads: TensorFlow's inter-op threads (0: its choice).
        runner: "function": `tf.saved_model.load(dir).signatures[name]`
            called on tensors, the usual TF2 in-process call; "session": the
            server's own way, a TF1 `Session` callable on numpy arrays
            (`serving.model_manager.LoadedVersion`).
    """

    def __init__(
        self,
        saved_model_dir: str,
        body: bytes,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        runner: str = "function",
    ):
        import tensorflow as tf

        from serving import json_codec
        from serving.model_manager import LoadedVersion
        from serving.signature import Signature

        if runner not in RUNNERS:
            raise ValueError(f"runner must be one of {RUNNERS}; received {runner!r}.")
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        if inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
        threading_config = tf.config.threading
        self.intra_op_threads = threading_config.get_intra_op_parallelism_threads()
        self.inter_op_threads = threading_config.get_inter_op_parallelism_threads()
        self.runner = runner
        if runner == "session":
            loaded = LoadedVersion("in_process", 0, saved_model_dir)
            signatures = loaded.signatures
        else:
            loaded = tf.saved_model.load(saved_model_dir)
            signatures = {
                key: Signature.from_function(key, fn)
                for key, fn in loaded.signatures.items()
            }

        def signature_of(name):
            return signatures[name or "serving_default"]

        name, arrays, _ = json_codec.decode_request(json.loads(body), signature_of)
        signature = signatures[name]
        self._loaded = loaded  # keeps the variables (and the session) alive
        self.signature_name = name
        self.batch = int(next(iter(arrays.values())).shape[0]) if arrays else 0
        if runner == "session":
            self._call = lambda: signature.run(arrays)
        else:
            function = signature.function
            tensors = {
                k: tf.constant(v, dtype=signature.inputs[k].dtype)
                for k, v in arrays.items()
            }
            self._call = lambda: {k: v.numpy() for k, v in function(**tensors).items()}

    def run(self, concurrency: int, duration_s: float, warmup_s: float) -> dict:
        """Calls from `concurrency` threads; returns raw latencies."""
        call = self._call
        results = _Results()
        start = time.monotonic() + warmup_s
        end = start + duration_s

        def worker():
            while True:
                sent = time.monotonic()
                if sent >= end:
                    return
                outputs = call()
                done = time.monotonic()
                if sent >= start and done <= end and outputs:
                    results.add(done - sent)

        threads = [
            threading.Thread(target=worker, daemon=True) for _ in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"latencies": results.latencies, "error_kinds": {}, "first_errors": {}}


def compare(
    url: str,
    body: bytes,
    saved_model_dir: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    rounds: int,
    auth_token: str = "",
    timeout_s: float = 30.0,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    runner: str = "function",
) -> tuple[dict, dict, InProcess]:
    """REST and in-process alternately, `rounds` times each, for `duration_s` in all.

    Alternating makes both see the same background load on a shared machine.
    """
    local = InProcess(saved_model_dir, body, intra_op_threads, inter_op_threads, runner)
    rest_raw, local_raw = [], []
    for index in range(rounds):
        warm = warmup_s if index == 0 else 0.2
        rest_raw.append(
            _rest_raw(
                url, body, concurrency, duration_s / rounds, warm, auth_token, timeout_s
            )
        )
        local_raw.append(local.run(concurrency, duration_s / rounds, warm))
    return _merge(rest_raw, duration_s), _merge(local_raw, duration_s), local


def _merge(raws: list[dict], duration_s: float) -> dict:
    latencies = [x for raw in raws for x in raw["latencies"]]
    kinds: collections.Counter = collections.Counter()
    first: dict[str, str] = {}
    for raw in raws:
        kinds.update(raw["error_kinds"])
        for kind, text in raw["first_errors"].items():
            first.setdefault(kind, text)
    summary = summarize(latencies, sum(kinds.values()), duration_s)
    summary["error_kinds"] = dict(kinds)
    summary["first_errors"] = first
    return summary


def _line(summary: dict, unit: str) -> str:
    return (
        f"  {unit} {summary['requests']}  errors {summary['errors']}  "
        f"throughput {summary['throughput']:.1f}/s  p50 {summary['p50_ms']:.2f} ms  "
        f"p99 {summary['p99_ms']:.2f} ms"
    )


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags

    exit_code = parse_flags(FLAGS, argv, __doc__)
    if exit_code is not None:
        return exit_code
    if not FLAGS.url:
        print("load_test: --url is required.", file=sys.stderr)
        return 2
    if FLAGS.body_file:
        with open(FLAGS.body_file, "rb") as f:
            body = f.read()
    else:
        body = make_body([int(d) for d in FLAGS.image_shape], FLAGS.signature_name)
    print(
        f"REST {FLAGS.url}  concurrency={FLAGS.concurrency}  "
        f"duration={FLAGS.duration_s:.1f}s  body={len(body)} bytes",
        flush=True,
    )
    if FLAGS.compare_in_process:
        rest, local, in_process = compare(
            FLAGS.url,
            body,
            FLAGS.compare_in_process,
            FLAGS.concurrency,
            FLAGS.duration_s,
            FLAGS.warmup_s,
            FLAGS.rounds,
            FLAGS.auth_token,
            FLAGS.timeout_s,
            FLAGS.intra_op_threads,
            FLAGS.inter_op_threads,
            FLAGS.in_process_runner,
        )
    else:
        rest = run_rest(
            FLAGS.url,
            body,
            FLAGS.concurrency,
            FLAGS.duration_s,
            FLAGS.warmup_s,
            FLAGS.auth_token,
            FLAGS.timeout_s,
        )
    print(_line(rest, "requests"), flush=True)
    for kind, count in rest["error_kinds"].items():
        print(f"  error {kind} x{count}: {rest['first_errors'][kind]}")
    if FLAGS.compare_in_process:
        print(
            f"In-process {FLAGS.compare_in_process}  "
            f"runner={in_process.runner}  signature={in_process.signature_name}  "
            f"batch={in_process.batch}  threads={FLAGS.concurrency}  "
            f"intra_op={in_process.intra_op_threads}  "
            f"inter_op={in_process.inter_op_threads}  "
            f"(alternating with REST, {FLAGS.rounds} rounds)"
        )
        print(_line(local, "calls"))
        ratio = rest["throughput"] / local["throughput"] if local["throughput"] else 0.0
        print(f"REST / in-process throughput: {ratio:.2f}x")
    return 0 if rest["requests"] else 1


if __name__ == "__main__":
    # Run from a checkout without installing: make `tools` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
